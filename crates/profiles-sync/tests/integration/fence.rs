//! The warehouse fence (issue 23): when resolvers on several machines
//! compete for a space's lease, a holder that was paused past its lease may
//! wake up and try to commit after a newer holder took over. Its commit
//! carries its older lease token, and the warehouse refuses it inside the
//! transaction (`ps_warehouse::fence`), so nothing of it lands. These tests
//! drive the fence directly, with the tokens a paused holder and a new one
//! would carry, on a space a `sync` created.

use crate::util::{golden_dir, Backend, Env, BACKENDS};
use ps_warehouse::{fence, fence_commit, set_meta, transaction, ErrorKind, Warehouse, FENCE_META};
use std::sync::mpsc;
use std::time::Duration;

const SCHEMA: &str = "case_study";
/// A `_ps_meta` key the tests write beside the fence, to see whether a
/// transaction's other writes landed.
const PROBE: &str = "fence_test_probe";

fn space(backend: Backend) -> Env {
    let env = Env::golden_on(backend);
    env.ok(&[
        "sync",
        golden_dir().join("case-study.jsonl").to_str().unwrap(),
    ]);
    env
}

/// One holder's commit: its writes, then the fence with its token, then
/// the token itself, as the resolver's commits do.
fn commit(wh: &mut dyn Warehouse, token: u64, probe: &str) -> ps_warehouse::Result<()> {
    transaction(wh, |wh| {
        set_meta(wh, SCHEMA, PROBE, probe)?;
        fence(wh, SCHEMA, token)?;
        set_meta(wh, SCHEMA, FENCE_META, &token.to_string())
    })
}

#[test]
fn a_commit_with_an_older_lease_token_is_refused_and_lands_nothing() {
    for backend in BACKENDS {
        let env = space(backend);
        let before = env.dump(SCHEMA);

        // The old holder commits while it still holds the lease.
        let mut old = ps_warehouse::open(&env.url()).unwrap();
        commit(&mut *old, 6, "old holder, in time").unwrap();
        drop(old);

        // A new holder takes over: its fencing commit comes first.
        let mut new = ps_warehouse::open(&env.url()).unwrap();
        fence_commit(&mut *new, SCHEMA, 7).unwrap();
        drop(new);
        assert_eq!(
            env.meta(SCHEMA, FENCE_META).as_deref(),
            Some("7"),
            "{backend:?}"
        );

        // The old holder wakes up and tries to commit: refused, nothing of
        // its transaction lands.
        let mut old = ps_warehouse::open(&env.url()).unwrap();
        let err = commit(&mut *old, 6, "old holder, too late").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Fenced, "{backend:?}: {err}");
        assert!(
            !err.to_string().contains("too late"),
            "the refusal names tokens only"
        );
        drop(old);
        assert_eq!(
            env.meta(SCHEMA, PROBE).as_deref(),
            Some("old holder, in time"),
            "{backend:?}: the refused transaction's write landed"
        );
        assert_eq!(
            env.meta(SCHEMA, FENCE_META).as_deref(),
            Some("7"),
            "{backend:?}"
        );

        // The new holder goes on committing with its own token.
        let mut new = ps_warehouse::open(&env.url()).unwrap();
        commit(&mut *new, 7, "new holder").unwrap();
        drop(new);
        assert_eq!(env.meta(SCHEMA, PROBE).as_deref(), Some("new holder"));

        // The space's tables (all but `_ps_meta`) are as the sync left them.
        assert_eq!(env.dump(SCHEMA), before, "{backend:?}");
    }
}

/// On PostgreSQL, resolvers on different machines commit through different
/// connections at the same time: the fence's check and write must not
/// interleave with another holder's, or both could pass the check before
/// either wrote its token. A holder that has passed the fence keeps a newer
/// holder's fencing commit waiting until it commits; after that the older
/// holder is refused.
#[test]
fn fenced_commits_of_one_space_are_serial_on_postgres() {
    let env = space(Backend::Postgres);
    let url = env.url();
    let mut old = ps_warehouse::open(&url).unwrap();

    let (go, started) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<ps_warehouse::Result<()>>();
    let url2 = url.clone();
    let newer = std::thread::spawn(move || {
        started.recv().unwrap();
        let mut new = ps_warehouse::open(&url2).unwrap();
        done.send(fence_commit(&mut *new, SCHEMA, 10)).unwrap();
    });

    transaction(&mut *old, |wh| {
        fence(wh, SCHEMA, 9)?;
        go.send(()).unwrap();
        // The newer holder's fencing commit waits for this transaction.
        assert!(
            finished.recv_timeout(Duration::from_millis(800)).is_err(),
            "a newer holder's fencing commit went through while an older one's transaction had passed the fence"
        );
        set_meta(wh, SCHEMA, PROBE, "older holder, first")?;
        set_meta(wh, SCHEMA, FENCE_META, "9")
    })
    .unwrap();

    finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the newer holder's fencing commit finishes once the older one committed")
        .unwrap();
    newer.join().unwrap();
    assert_eq!(env.meta(SCHEMA, FENCE_META).as_deref(), Some("10"));
    assert_eq!(
        env.meta(SCHEMA, PROBE).as_deref(),
        Some("older holder, first")
    );

    let err = commit(&mut *old, 9, "older holder, second").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fenced, "{err}");
    assert_eq!(
        env.meta(SCHEMA, PROBE).as_deref(),
        Some("older holder, first")
    );
}

/// A holder paused inside a commit (SIGSTOP, a VM freeze) holds the fence
/// lock for as long as it is paused, so a newer holder's fencing commit
/// would wait for all that time. The newer holder ends such sessions first
/// (`end_older_holders`, after a grace): the paused transaction rolls back
/// whole, and the newer holder's fencing commit goes through at once.
#[test]
fn a_holder_paused_inside_a_commit_is_ended_by_the_next_one_on_postgres() {
    let env = space(Backend::Postgres);
    let url = env.url();
    let mut old = ps_warehouse::open(&url).unwrap();
    old.begin().unwrap();
    fence(&mut *old, SCHEMA, 11).unwrap();
    set_meta(&mut *old, SCHEMA, PROBE, "paused holder").unwrap();
    // `old` is now "paused": its transaction stays open.

    let mut new = ps_warehouse::open(&url).unwrap();
    assert_eq!(
        ps_warehouse::fence_holders(&mut *new, SCHEMA)
            .unwrap()
            .len(),
        1,
        "the open fenced transaction holds the lock"
    );
    let t0 = std::time::Instant::now();
    let ended =
        ps_warehouse::end_older_holders(&mut *new, SCHEMA, Duration::from_millis(300)).unwrap();
    assert_eq!(ended, 1);
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "ended before its grace"
    );
    fence_commit(&mut *new, SCHEMA, 12).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    assert!(ps_warehouse::fence_holders(&mut *new, SCHEMA)
        .unwrap()
        .is_empty());
    drop(new);

    // The paused holder wakes up: its session is gone, nothing of it landed.
    assert!(old.commit().is_err(), "the ended session committed");
    drop(old);
    assert_eq!(env.meta(SCHEMA, PROBE), None);
    assert_eq!(env.meta(SCHEMA, FENCE_META).as_deref(), Some("12"));

    // With no other holder, it returns at once.
    let mut again = ps_warehouse::open(&url).unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(
        ps_warehouse::end_older_holders(&mut *again, SCHEMA, Duration::from_secs(5)).unwrap(),
        0
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
}
