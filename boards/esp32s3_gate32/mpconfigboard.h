#define MICROPY_HW_BOARD_NAME "Transit gate reader, seed-scale lists (ESP32-S3, 32 MiB)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
