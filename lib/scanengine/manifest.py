metadata(description="GM65/GM805-class serial QR scan engine: zone commands, framed scan data",
         version="0.1.0")
module("scanengine.py")
