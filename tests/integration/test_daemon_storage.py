"""A recording that fails mid-session (the file size limit reached, as on a
full card): with recording.on_failure: continue, the technician's work goes
on byte-exact, and the SIEM hears of it once, as recording_failed."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

LIMIT = 256 * 1024


limited = st.fsize_limited(LIMIT)


def test_recording_failure_mid_session_continues_and_reports():
    s = st.Shim()
    try:
        s.start(preexec_fn=limited)
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        s.login(t)
        data = bytes(range(256)) * 2048          # 512 KiB, twice the limit
        got = b""
        for i in range(0, len(data), 4096):
            t.write(data[i:i + 4096])
            got += dev.read_exact(4096, 20)
        assert got == data, "relay not byte-exact after the recording failed"
        deadline = time.time() + 10
        events = []
        while time.time() < deadline:
            with open(os.path.join(s.storage, "audit.jsonl")) as f:
                events = [json.loads(l) for l in f]
            if any(e["event"] == "recording_failed" for e in events):
                break
            time.sleep(0.1)
        failed = [e for e in events if e["event"] == "recording_failed"]
        assert len(failed) == 1, [e["event"] for e in events]
        assert failed[0]["on_failure"] == "continue"
        assert "recording degraded" in s.log()
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
