# etcd/: the etcd v3 client library (owned by the etcd module).
noinst_LIBRARIES += etcd/libetcd.a
etcd_libetcd_a_SOURCES = etcd/etcd.h etcd/etcd_internal.h \
	etcd/etcd_client.c etcd/etcd_codec.c etcd/etcd_http.c \
	etcd/etcd_kv.c etcd/etcd_lease.c etcd/etcd_watch.c
