metadata(description="Civil dates from day counts, integers only (no epoch differences)",
         version="0.1.0")
module("civildate.py")
