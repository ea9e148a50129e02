# QEMU mps2-an385 (Cortex-M3) with the reader frozen in: flash.py bench device counts the
# instructions its hot paths execute. Built out of tree, as the ESP32 boards are:
#   make -C micropython/ports/qemu BOARD_DIR=$PWD/boards/qemu_mps2
include boards/MPS2_AN385/mpconfigboard.mk
FROZEN_MANIFEST = $(BOARD_DIR)/manifest.py
# The ESP32's GC heap without PSRAM (111,936 bytes; docs/device-figures.md).
MICROPY_HEAP_SIZE = 114688
# os.urandom, as on the ESP32 (the journal draws its epoch from it); the port's source is a
# fixed-seed generator, so runs stay the same.
CFLAGS += -DMICROPY_PY_OS_URANDOM=1
