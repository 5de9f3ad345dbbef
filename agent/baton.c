/* placeholder: the daemon main lands with the loop */
int main(void) { return 0; }
