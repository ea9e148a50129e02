metadata(description="asyncio waits that a device ends early: a UART holding n bytes or an "
                     "interrupt line low, with a deadline", version="0.1.0")
module("aioready.py")
