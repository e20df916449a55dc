//! The parsers and the judgement, on answers captured from the lab's GlusterFS 10.3.

use super::*;

const STATUS_HEALTHY: &str = include_str!("../testdata/volume-status-healthy.xml");
const STATUS_BUSY: &str = include_str!("../testdata/volume-status-busy.xml");
const HEAL_HEALTHY: &str = include_str!("../testdata/heal-summary-healthy.xml");
const HEAL_BRICK_DOWN: &str = include_str!("../testdata/heal-summary-brick-down-pending.xml");
const INFO: &str = include_str!("../testdata/volume-info.xml");

fn look(
    status: Result<Vec<BrickOnline>, String>,
    heal: Result<Vec<BrickHeal>, String>,
) -> VolumeLook {
    VolumeLook {
        asked: "stor1".into(),
        info: parse_volume_info(INFO),
        status,
        heal,
    }
}

#[test]
fn volume_info_gives_bricks_and_ping_timeout() {
    let i = parse_volume_info(INFO).unwrap();
    assert!(i.started);
    assert_eq!(i.ping_timeout_s, 20);
    assert_eq!(i.bricks.len(), 3);
    assert_eq!(i.bricks[0].node, "stor1");
    assert_eq!(i.bricks[0].path, "/srv/twofold/bricks/vmstore");
    assert!(!i.bricks[0].arbiter && !i.bricks[1].arbiter && i.bricks[2].arbiter);
    assert_eq!(i.bricks[2].node, "host1");
    // Without the option, GlusterFS's default applies.
    let without = INFO.replace("network.ping-timeout", "network.other");
    assert_eq!(parse_volume_info(&without).unwrap().ping_timeout_s, 42);
}

#[test]
fn volume_status_lists_bricks_not_daemons_and_busy_glusterd_is_an_error() {
    let s = parse_volume_status(STATUS_HEALTHY).unwrap();
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(s.iter().all(|b| b.online));
    assert_eq!(
        s.iter().map(|b| b.node.as_str()).collect::<Vec<_>>(),
        ["stor1", "stor2", "host1"]
    );
    let e = parse_volume_status(STATUS_BUSY).unwrap_err();
    assert!(e.contains("Another transaction is in progress"), "{e}");
    let e = parse_volume_status("").unwrap_err();
    assert!(e.contains("printed nothing"), "{e}");
    let e = parse_volume_status("<cliOutput><opRet>0").unwrap_err();
    assert!(e.contains("not XML"), "{e}");
}

#[test]
fn heal_summary_counts_entries_and_sees_a_brick_that_is_not_connected() {
    let h = parse_heal_summary(HEAL_HEALTHY).unwrap();
    assert_eq!(h.len(), 3);
    assert!(h
        .iter()
        .all(|b| b.connected && b.pending == 0 && b.split_brain == 0));
    let h = parse_heal_summary(HEAL_BRICK_DOWN).unwrap();
    assert_eq!(h[0].pending, 4);
    assert!(!h[1].connected, "{:?}", h[1]);
    assert!(h[1].status.contains("Transport endpoint is not connected"));
    assert_eq!(h[2].pending, 4);
    let bad = HEAL_HEALTHY.replacen(
        "<numberOfEntriesInSplitBrain>0<",
        "<numberOfEntriesInSplitBrain>x<",
        1,
    );
    let e = parse_heal_summary(&bad).unwrap_err();
    assert!(e.contains("numberOfEntriesInSplitBrain is 'x'"), "{e}");
}

#[test]
fn two_copies_only_when_every_brick_answers_and_nothing_waits_for_a_heal() {
    let f = judge(&look(
        parse_volume_status(STATUS_HEALTHY),
        parse_heal_summary(HEAL_HEALTHY),
    ));
    assert_eq!(f.state, RuleState::Ok, "{}", f.detail);
    assert!(f.detail.contains("All 3 bricks answer"), "{}", f.detail);
    assert_eq!(f.heal_left, Some(0));
    assert_eq!(f.ping_timeout_s, Some(20));

    // stor2's link cut: glusterd is stuck on it, the heal summary sees it gone.
    let f = judge(&look(
        parse_volume_status(STATUS_BUSY),
        parse_heal_summary(HEAL_BRICK_DOWN),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert_eq!(f.offline, ["stor2"]);
    assert!(
        f.detail.contains("copy on stor2 is offline") && f.detail.contains("4 entries"),
        "{}",
        f.detail
    );

    // glusterd says a brick is offline although the summary did not run.
    let offline = STATUS_HEALTHY.replacen(
        "<status>1</status>\n          <port>51393",
        "<status>0</status>\n          <port>51393",
        1,
    );
    let f = judge(&look(
        parse_volume_status(&offline),
        Err("GlusterFS did not answer within 4 s".into()),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert_eq!(f.offline, ["stor2"], "{}", f.detail);

    // The arbiter alone offline.
    let arbiter = HEAL_HEALTHY.replace(
        "<name>host1:/srv/twofold/arbiter/vmstore</name>\n        <status>Connected</status>",
        "<name>host1:/srv/twofold/arbiter/vmstore</name>\n        <status>Transport endpoint is not connected</status>",
    );
    let f = judge(&look(
        parse_volume_status(STATUS_HEALTHY),
        parse_heal_summary(&arbiter),
    ));
    assert_eq!(f.offline, ["host1"]);
    assert!(
        f.detail.contains("arbiter on host1 is offline"),
        "{}",
        f.detail
    );

    // A heal running after a node came back: said, with the entries left.
    let healing = HEAL_HEALTHY.replacen(
        "<numberOfEntriesInHealPending>0<",
        "<numberOfEntriesInHealPending>12<",
        1,
    );
    let f = judge(&look(
        parse_volume_status(STATUS_HEALTHY),
        parse_heal_summary(&healing),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert!(
        f.detail.contains("A heal is running: 12 entries left"),
        "{}",
        f.detail
    );
    assert_eq!(f.heal_left, Some(12));

    let split = HEAL_HEALTHY.replacen(
        "<numberOfEntriesInSplitBrain>0<",
        "<numberOfEntriesInSplitBrain>1<",
        1,
    );
    let f = judge(&look(
        parse_volume_status(STATUS_HEALTHY),
        parse_heal_summary(&split),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert!(
        f.detail.contains("1 entry of the store is in split-brain"),
        "{}",
        f.detail
    );
}

#[test]
fn what_was_not_read_is_never_taken_as_fine() {
    let f = judge(&look(
        Err("GlusterFS did not answer within 4 s".into()),
        Err("GlusterFS did not answer within 4 s".into()),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert!(f.detail.contains("could not be checked"), "{}", f.detail);
    let f = judge(&look(
        parse_volume_status(STATUS_HEALTHY),
        Err("no answer".into()),
    ));
    assert_eq!(f.state, RuleState::Warn);
    assert!(
        f.detail
            .contains("whether a heal is pending could not be read"),
        "{}",
        f.detail
    );
    let f = judge(&VolumeLook {
        asked: "stor1".into(),
        info: Err("GlusterFS answered: Volume vmstore does not exist".into()),
        status: Err("GlusterFS answered: Volume vmstore does not exist".into()),
        heal: Err("x".into()),
    });
    assert_eq!(f.state, RuleState::Missing);
}

#[test]
fn a_command_stopped_by_its_time_limit_says_so() {
    assert!(answer(124, "", "")
        .unwrap_err()
        .contains("did not answer within"));
    assert_eq!(answer(1, STATUS_BUSY, "").unwrap(), STATUS_BUSY);
    let e = answer(
        1,
        "",
        "Connection failed. Please check if gluster daemon is operational.",
    )
    .unwrap_err();
    assert!(e.contains("gluster daemon is operational"), "{e}");
}
