"""Column rules as pure functions: times, time zones, provider config, bodies."""

from datetime import UTC, datetime

from migration_v1.services.convert import (
    decode_body,
    iana_zone,
    provider_key,
    scrub_config,
    sinch_config,
    v1_time,
)


def test_autumn_fold_takes_the_first_occurrence():
    # 2021-11-07 01:30 happens twice in Chicago: first at CDT (UTC-5).
    assert v1_time(datetime(2021, 11, 7, 1, 30)) == datetime(2021, 11, 7, 6, 30, tzinfo=UTC)
    # One hour later on the wall clock is already CST (UTC-6).
    assert v1_time(datetime(2021, 11, 7, 2, 30)) == datetime(2021, 11, 7, 8, 30, tzinfo=UTC)


def test_spring_gap_moves_forward_by_the_gap():
    # 02:30 does not exist on 2021-03-14; it is read as 03:30 CDT = 08:30 UTC.
    assert v1_time(datetime(2021, 3, 14, 2, 30)) == datetime(2021, 3, 14, 8, 30, tzinfo=UTC)
    assert v1_time(datetime(2021, 3, 14, 3, 30)) == datetime(2021, 3, 14, 8, 30, tzinfo=UTC)
    assert v1_time(datetime(2021, 3, 14, 1, 59)) == datetime(2021, 3, 14, 7, 59, tzinfo=UTC)


def test_ordinary_times_and_null():
    assert v1_time(datetime(2020, 1, 15, 12, 0)) == datetime(2020, 1, 15, 18, 0, tzinfo=UTC)
    assert v1_time(datetime(2020, 7, 15, 12, 0)) == datetime(2020, 7, 15, 17, 0, tzinfo=UTC)
    assert v1_time(None) is None


def test_windows_time_zones():
    assert iana_zone("Eastern Standard Time") == ("America/New_York", True)
    assert iana_zone("US Mountain Standard Time") == ("America/Phoenix", True)
    assert iana_zone("Hawaiian Standard Time") == ("Pacific/Honolulu", True)
    assert iana_zone("Alaskan Standard Time") == ("America/Anchorage", True)
    assert iana_zone(None) == ("America/Chicago", True)  # NULL means Central
    assert iana_zone("  ") == ("America/Chicago", True)
    assert iana_zone("Mars Standard Time") == ("America/Chicago", False)


def test_provider_spellings():
    assert {provider_key(p) for p in ("Sinch", "SINCH", "sinch ", None, "")} == {"sinch"}
    assert provider_key("Bandwidth") == "bandwidth"


def test_sinch_config_maps_keys_and_refuses_incomplete():
    assert sinch_config('{"servicePlanId": "p1", "apiToken": "t", "region": "eu"}') == {
        "service_plan_id": "p1",
        "api_token": "t",
        "region": "eu",
    }
    assert sinch_config('{"servicePlanId": "p1", "apiToken": "t"}')["region"] == "us"
    assert sinch_config('{"servicePlanId": "p1"}') is None
    assert sinch_config("not json {") is None
    assert sinch_config(None) is None


def test_scrub_config_removes_every_secret():
    scrubbed = scrub_config(
        '{"servicePlanId": "p1", "apiToken": "tok", "password": "pw", "authToken": "a", "accountSid": "sid"}'
    )
    assert scrubbed["servicePlanId"] == "p1"
    assert "tok" not in str(scrubbed) and "pw" not in str(scrubbed) and "'a'" not in str(scrubbed)
    assert "sid" not in str(scrubbed.values())
    assert scrub_config("apiToken=tok not json") == "<unparseable, withheld>"


def test_bodies():
    assert decode_body(None) == ("", None)
    assert decode_body("café ☕".encode()) == ("café ☕", None)
    assert decode_body(b"Hello\x00there") == (None, "body_nul_character")
    assert decode_body(b"Caf\xe9") == (None, "body_not_utf8")


def test_every_windows_zone_of_the_cldr_table_maps_to_a_loadable_iana_zone():
    from zoneinfo import ZoneInfo

    from tzlocal.windows_tz import win_tz

    assert len(win_tz) > 100  # CLDR's whole table, not a hand-written dozen
    for windows_id in win_tz:
        zone, known = iana_zone(windows_id)
        assert known and ZoneInfo(zone), windows_id
    assert iana_zone("Tokyo Standard Time") == ("Asia/Tokyo", True)
    assert iana_zone("W. Europe Standard Time") == ("Europe/Berlin", True)
    assert iana_zone(" eastern standard time ") == ("America/New_York", True)  # typed by people
    assert iana_zone("Europe/Paris") == ("Europe/Paris", True)  # already IANA
    assert iana_zone("Mars Standard Time") == ("America/Chicago", False)
