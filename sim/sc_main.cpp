// Debian's libsystemc.so carries a main() that calls sc_main(), so every program linking SystemC
// must define sc_main even when, like Faultline's, it has its own main() and drives the
// simulation with sc_start() from there. This one is never called.
extern "C" int sc_main(int, char*[]) { return 1; }  // C linkage, as sysc/kernel/sc_externs.h declares it
