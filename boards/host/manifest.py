# Host board: frozen into the 32-bit unix interpreter (`make check-device`); `flash.py build
# --board host` compiles the same lines, minus the port's base modules, for the 64-bit one.
# The unix port's base modules (asyncio, ...), as an ESP32 board includes $(PORT_DIR)/boards.
include("$(PORT_DIR)/variants/standard/manifest.py")
include("$(BOARD_DIR)/../../firmware/manifest.py")
module("board.py", base_path="$(BOARD_DIR)")
module("hostboot.py", base_path="$(BOARD_DIR)")
module("nor.py", base_path="$(BOARD_DIR)")
module("partition.py", base_path="$(BOARD_DIR)")
module("hostlink.py", base_path="$(BOARD_DIR)")
module("clock.py", base_path="$(BOARD_DIR)")
# Partition table and pin map, generated from partitions.csv and pins.csv into $(GEN_DIR).
module("hosttables.py", base_path="$(GEN_DIR)")
