//! Location parsing by example.

use super::*;

#[test]
fn plain_paths_are_local() {
    assert_eq!(
        Location::parse("/srv/data").unwrap(),
        Location::Local("/srv/data".into())
    );
    assert_eq!(
        Location::parse("./a:b").unwrap(),
        Location::Local("./a:b".into())
    );
    assert_eq!(
        Location::parse("data").unwrap(),
        Location::Local("data".into())
    );
}

#[test]
fn host_colon_path() {
    assert_eq!(
        Location::parse("old:/srv/data").unwrap(),
        Location::Remote {
            host: "old".into(),
            port: None,
            path: "/srv/data".into()
        }
    );
    assert_eq!(
        Location::parse("root@db01:data").unwrap(),
        Location::Remote {
            host: "root@db01".into(),
            port: None,
            path: "data".into()
        }
    );
}

#[test]
fn ssh_urls() {
    assert_eq!(
        Location::parse("ssh://root@db01:2222/srv").unwrap(),
        Location::Remote {
            host: "root@db01".into(),
            port: Some(2222),
            path: "/srv".into()
        }
    );
    assert_eq!(
        Location::parse("ssh://db01/srv").unwrap(),
        Location::Remote {
            host: "db01".into(),
            port: None,
            path: "/srv".into()
        }
    );
    assert!(Location::parse("ssh://db01").is_err());
    assert!(Location::parse("ssh://db01:x/a").is_err());
    assert!(Location::parse("").is_err());
}
