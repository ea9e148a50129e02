#define MICROPY_HW_BOARD_NAME "Transit gate reader, seed-scale lists (ESP32-S3, 32 MiB)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
// The REPL is on native USB: UART0 is free for the PSAM slot (board.sam_slot()).
#define MICROPY_HW_ENABLE_UART_REPL (0)
