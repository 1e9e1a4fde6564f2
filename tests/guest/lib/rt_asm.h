/* Constants shared by the runtime's assembly and C (keep in sync with rt.h). */
#ifndef GODWIT_GUEST_RT_ASM_H
#define GODWIT_GUEST_RT_ASM_H

#define RT_FRAME_EPC    (32 * 8)
#define RT_FRAME_CAUSE  (33 * 8)
#define RT_FRAME_TVAL   (34 * 8)
#define RT_FRAME_STATUS (35 * 8)
#define RT_FRAME_SIZE   (36 * 8)

/* a7 value of the ecall that ends rt_run_in_mode's lower-mode function. */
#define RT_ECALL_RETURN 0x52455455 /* "RETU" */

#endif
