# Host board: what `flash.py build --board host` compiles; the emulator runs these .mpy files.
include("$(BOARD_DIR)/../../firmware/manifest.py")
module("board.py", base_path="$(BOARD_DIR)")
module("hostboot.py", base_path="$(BOARD_DIR)")
module("nor.py", base_path="$(BOARD_DIR)")
module("partition.py", base_path="$(BOARD_DIR)")
module("hostlink.py", base_path="$(BOARD_DIR)")
module("clock.py", base_path="$(BOARD_DIR)")
