# Frozen into the firmware: the port's base modules, then the reader and this board's API.
include("$(PORT_DIR)/boards/manifest.py")
include("$(BOARD_DIR)/../../firmware/manifest.py")
module("esp32board.py", base_path="$(BOARD_DIR)/../esp32common")
module("board.py", base_path="$(BOARD_DIR)")
