"""The emulator's demo station (`make emulate`) with the station server: the provisioned reader
(the shipped `main`, real time) signs its uploads with the key provisioning gave it, its
verdicts reach the server once each, its status shows on the fleet page, and a published list
reaches it."""

import time

from station_kit import until

from flashtool.emulator.station import Station
from flashtool.fares import records as fare_records
from flashtool.server import records
from flashtool.server.app import fleet_view


def test_demo_station_uploads_through_the_server(tmp_path):
    st = Station(workdir=tmp_path / "station", accelerated=False)
    try:
        st.start_server()
        st.provision()
        st.start()
        for i, name in enumerate(("normal", "lost")):
            st.present(name)
            until(lambda i=i: sum(" gate verdict " in x and "seq=" in x
                                  for x in st.reader.output) > i, "verdict %d" % (i + 1))
            time.sleep(2.5)
        seq = st.publish_list()
        srv = st.server.station
        deadline = time.monotonic() + 300  # polled: only a reader that never syncs waits it out
        row = None
        while time.monotonic() < deadline:
            held = srv.read(srv.store.records_of, "G07")
            row = {r["reader"]: r for r in fleet_view(srv)["readers"]}.get("G07")
            if len(held) >= 2 and row and row["list"] == seq and row["backlog"] == 0:
                break
            time.sleep(0.5)
        assert row is not None and row["list"] == seq and row["backlog"] == 0, row
        assert all(records.check(raw) is None for _, _, raw in held)
        # a card tap's verdict is in its second purchase record
        verdicts = [v["verdict"] for v in fare_records.verdicts([raw for _, _, raw in held])]
        assert verdicts[:2] == ["PASS", "DENY"], verdicts
        assert [s for _, s, _ in held] == list(range(1, len(held) + 1))
        assert row["auth_failures"] == 0 and row["conflicts"] == 0 and not row["silent"]
    finally:
        st.close()
