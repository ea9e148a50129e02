# Build (README, "Build and flash a real board"): make -C <micropython>/ports/esp32
#   BOARD_DIR=$PWD/boards/esp32s3_gate32
set(IDF_TARGET esp32s3)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.usb
    boards/sdkconfig.ble
    boards/sdkconfig.spiram_sx
    ${MICROPY_BOARD_DIR}/sdkconfig.board
    ${CMAKE_BINARY_DIR}/sdkconfig.partitions
)
# The partition table by absolute path: ESP-IDF resolves a relative one against ports/esp32, so
# it would depend on where the MicroPython checkout sits.
file(WRITE ${CMAKE_BINARY_DIR}/sdkconfig.partitions
     "CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=\"${MICROPY_BOARD_DIR}/partitions.csv\"\n")
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/manifest.py)
