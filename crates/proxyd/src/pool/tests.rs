//! Unit tests of [`super::Pool`]: backups, retries' exclusions, sticky cookies.
use super::*;

fn pool(yaml: &str) -> Pool {
    let c: config::Pool = serde_yaml::from_str(yaml).expect("pool yaml");
    Pool::build("p", &c).expect("pool")
}

#[tokio::test]
async fn backups_serve_only_when_every_primary_is_down() {
    let p = pool(
        "servers: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}, {address: '127.0.0.1:3', backup: true}]",
    );
    for _ in 0..10 {
        let s = p.pick(None, None, &[]).expect("a server");
        assert!(!s.is_backup());
    }
    let now = Instant::now();
    for s in &p.primaries {
        s.record_failure(now, "refused");
    }
    let s = p.pick(None, None, &[]).expect("the backup");
    assert_eq!(s.address(), "127.0.0.1:3");
    let tried = [s];
    assert!(p.pick(None, None, &tried).is_none());
}

#[tokio::test]
async fn tried_servers_are_skipped() {
    let p = pool("servers: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]");
    let first = p.pick(None, None, &[]).expect("first");
    let second = p
        .pick(None, None, std::slice::from_ref(&first))
        .expect("second");
    assert!(!Arc::ptr_eq(&first, &second));
    assert!(p.pick(None, None, &[first, second]).is_none());
}

#[tokio::test]
async fn a_pool_of_one_is_never_marked_down() {
    let p = pool("servers: [{address: '127.0.0.1:1'}]");
    let s = p.pick(None, None, &[]).expect("server");
    assert!(!s.record_failure(Instant::now(), "refused"));
    assert!(p.pick(None, None, &[]).is_some());
}

#[tokio::test]
async fn a_cookie_names_its_server_and_falls_back_when_it_is_down() {
    let p = pool("servers: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]");
    for _ in 0..5 {
        let s = p.pick(None, Some("127.0.0.1:2"), &[]).expect("server");
        assert_eq!(s.address(), "127.0.0.1:2");
    }
    p.primaries[1].record_failure(Instant::now(), "refused");
    let s = p.pick(None, Some("127.0.0.1:2"), &[]).expect("server");
    assert_eq!(s.address(), "127.0.0.1:1");
}

#[tokio::test]
async fn a_cookie_naming_a_drained_or_disabled_server_moves_to_another() {
    use crate::pool::admin::AdminState;
    let p = pool("servers: [{address: '127.0.0.1:1'}, {address: '127.0.0.1:2'}]");
    for admin in [AdminState::Drain, AdminState::Disabled] {
        p.primaries[1].set_admin(admin);
        for _ in 0..5 {
            let s = p.pick(None, Some("127.0.0.1:2"), &[]).expect("server");
            assert_eq!(s.address(), "127.0.0.1:1");
        }
    }
    p.primaries[1].set_admin(AdminState::Ready);
    let s = p.pick(None, Some("127.0.0.1:2"), &[]).expect("server");
    assert_eq!(s.address(), "127.0.0.1:2");
}
