# The QEMU board: the port's asyncio (pure Python: this port has no _asyncio C module), the reader,
# this board's API, the hot-path workload (with the fare path it replays:
# faretap, farereplay) and the
# calibration benchmarks (tests/perf_bench of the pinned MicroPython, frozen unchanged).
include("$(MPY_DIR)/extmod/asyncio")
package("asyncio", ("task.py",), base_path="$(MPY_DIR)/extmod")
include("$(BOARD_DIR)/../../firmware/manifest.py")
module("board.py", base_path="$(BOARD_DIR)")
module("hotpaths.py", base_path="$(BOARD_DIR)/../host/workloads")
module("faretap.py", base_path="$(BOARD_DIR)/../host/workloads")
module("farereplay.py", base_path="$(BOARD_DIR)/../host/workloads")
module("partition.py", base_path="$(BOARD_DIR)/../host")
module("nor.py", base_path="$(BOARD_DIR)/../host")
module("hosttables.py", base_path="$(GEN_DIR)")
freeze("$(MPY_DIR)/tests/perf_bench", ("bm_fannkuch.py", "bm_hexiom.py", "bm_nqueens.py",
                                        "bm_pidigits.py", "misc_aes.py", "misc_pystone.py"))
