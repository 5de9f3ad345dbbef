# etcd/: the etcd v3 client library (owned by the etcd module).
noinst_LIBRARIES += etcd/libetcd.a
etcd_libetcd_a_SOURCES = etcd/etcd.h
