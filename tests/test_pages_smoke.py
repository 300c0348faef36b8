from streamlit.testing.v1 import AppTest


def test_first_run_shows_setup(engine):
    at = AppTest.from_file("../app.py", default_timeout=30).run()
    assert not at.exception
    assert any("first admin" in m.value for m in at.markdown)
