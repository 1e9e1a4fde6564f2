/* mig_throttle.c with a writer bound by its CPU time (auto-converge's case). */
#define MIG_THROTTLE_SPIN 4000UL
#include "mig_throttle.c"
