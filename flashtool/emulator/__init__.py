"""The emulated station: a reader on the emulated board with its keys, lists, server and
riders; scripted scenarios, the dashboard, HTML reports, and the PN532 simulator on a pty."""
