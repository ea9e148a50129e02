#define MICROPY_HW_BOARD_NAME "Transit gate reader (ESP32-S3)"
#define MICROPY_HW_MCU_NAME "ESP32S3"
