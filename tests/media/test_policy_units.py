"""Forwarding policy pieces without a network: ranking, speakers, downlink states, REMB caps."""


from media import SfuConfig
from media.downlink import DownlinkMonitor, LinkSample, RembTracker
from media.policy import VideoTrack, bitrate_cap, display_role, rank_videos, select_videos
from media.remb import PublisherBitrate
from media.speakers import ActiveSpeakers
from tests.clock import ManualClock
from tests.waiting import wait_for

CAM = {p: VideoTrack(p, f"{p}-cam", False) for p in "abcde"}
SCREEN_B = VideoTrack("b", "b-screen", True)


def test_presenter_and_screens_first_then_recent_speakers():
    videos = [CAM["a"], CAM["b"], SCREEN_B, CAM["c"], CAM["d"], CAM["e"]]
    ranked = rank_videos(videos, presenter="c", speakers=["e", "a"])
    assert ranked == [SCREEN_B, CAM["c"], CAM["e"], CAM["a"], CAM["b"], CAM["d"]]

    config = SfuConfig(last_n=2, reduced_videos=1)
    # Presenter and screen share are outside last-N; a subscriber never gets its own video.
    assert select_videos(ranked, "x", "c", "full", config) == [
        SCREEN_B,
        CAM["c"],
        CAM["e"],
        CAM["a"],
    ]
    assert select_videos(ranked, "e", "c", "full", config) == [
        SCREEN_B,
        CAM["c"],
        CAM["a"],
        CAM["b"],
    ]
    assert select_videos(ranked, "x", "c", "reduced", config) == [SCREEN_B]
    assert select_videos(ranked, "x", "c", "audio-only", config) == []

    assert display_role(SCREEN_B, "c") == "screen-share"
    assert display_role(CAM["c"], "c") == "presenter" and display_role(CAM["a"], "c") == "tile"
    assert bitrate_cap("tile", config) == config.tile_bitrate_bps


def test_a_speaker_moves_first_after_speaking_long_enough():
    speakers = ActiveSpeakers(speech_level=50, activation_ticks=2)
    a, b = speakers.meter("a"), speakers.meter("b")
    assert speakers.order == ["a", "b"]  # join order until someone speaks

    def tick(level_a: int, level_b: int) -> bool:
        for _ in range(10):
            a(level_a)
            b(level_b)
        return speakers.update()

    assert not tick(127, 20)  # one loud tick: a cough
    assert not tick(127, 127)
    assert not tick(127, 20)
    assert tick(127, 20) and speakers.order == ["b", "a"]
    assert not tick(127, 20)  # still speaking: no further change
    speakers.remove("b")
    assert speakers.order == ["a"]


def _sample(loss=0.0, rtt=0.05, remb=None, video_bps=500_000.0):
    return LinkSample(fraction_lost=loss, rtt_s=rtt, remb_bps=remb, video_bps=video_bps)


def test_downlink_steps_down_and_up_with_hysteresis():
    config = SfuConfig(link_check_interval=1.0, degrade_after_s=2.0, recover_after_s=3.0)
    link = DownlinkMonitor(config)
    states = []
    for sample in [_sample(loss=0.2)] * 4 + [_sample()] * 6:
        link.update(sample)
        states.append(link.state)
    assert states == ["full", "reduced", "reduced", "audio-only"] + ["audio-only"] * 2 + [
        "reduced",
        "reduced",
        "reduced",
        "full",
    ]

    # A middle value (between recover and degrade bounds) neither degrades nor recovers.
    link = DownlinkMonitor(config)
    for _ in range(5):
        assert not link.update(_sample(loss=0.05))
    # High RTT and a low REMB are bad too; a low REMB on a trickle of video says nothing.
    assert not link.update(_sample(rtt=1.0)) and link.update(_sample(remb=100_000))
    assert link.state == "reduced"
    for _ in range(5):
        link.update(_sample(remb=10_000, video_bps=50_000))
    assert link.state == "full"


def test_after_videos_resume_a_lagging_remb_does_not_step_down_again_but_loss_does():
    config = SfuConfig(link_check_interval=1.0, degrade_after_s=1.0, recover_after_s=2.0)
    link = DownlinkMonitor(config)
    link.update(_sample(loss=0.2))
    assert link.state == "reduced"
    link.update(_sample())
    link.update(_sample())
    assert link.state == "full"  # videos resume
    # The estimate still ramps up from the thin past: for recover_after_s it says nothing.
    assert not link.update(_sample(remb=50_000))
    assert not link.update(_sample(remb=50_000))
    assert link.update(_sample(remb=50_000)) and link.state == "reduced"
    link.update(_sample())
    link.update(_sample())
    assert link.state == "full"
    assert link.update(_sample(loss=0.2)) and link.state == "reduced"  # loss counts at once


def test_remb_tracker_sums_distinct_ssrc_sets_and_forgets_old_ones():
    now = [0.0]
    tracker = RembTracker(max_age_s=3, clock=lambda: now[0])
    tracker.add(400_000, [1])  # aiortc: one REMB per receiver
    tracker.add(600_000, [2])
    tracker.add(600_000, [2])  # the same REMB seen by a second sender
    assert tracker.estimate({1, 2}) == 1_000_000
    assert tracker.estimate({2}) == 600_000  # SSRC 1 paused
    now[0] = 5.0
    assert tracker.estimate({1, 2}) is None


async def test_publisher_remb_is_the_sum_of_caps_lowered_to_the_estimate():
    clock = ManualClock()
    sent = []

    async def send(bitrate, ssrcs):
        sent.append((bitrate, ssrcs))

    def delivered(count):
        # A REMB goes out on a task of its own; the next waits until it is done.
        return wait_for(lambda: len(sent) == count, what=f"REMB {count}")

    remb = PublisherBitrate(interval=1.0, clock=clock)
    remb.set_sender(send)
    remb.set_caps({11: 400_000, 22: 2_500_000})  # camera tile + screen share
    await delivered(1)
    assert sent == [(2_900_000, [11, 22])]
    remb.estimate("camera", 1_000_000)
    remb.estimate("screen", 500_000)  # both estimated: congestion lowers it at once
    await delivered(2)
    assert sent[-1] == (1_500_000, [11, 22])
    clock.advance(0.5)
    remb.tick()  # unchanged, inside the interval
    assert remb.rembs_sent == 2
    clock.advance(1.0)
    remb.tick()
    await delivered(3)
    assert remb.rembs_sent == 3
    remb.forget("screen")
    remb.set_caps({11: 400_000})
    await delivered(4)
    assert sent[-1] == (400_000, [11])
