#define MICROPY_HW_BOARD_NAME "Transit reader devkit (ESP32)"
#define MICROPY_HW_MCU_NAME "ESP32"
