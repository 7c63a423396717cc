use super::*;

fn entries(format: Format, name: &str, text: &str) -> Vec<Entry> {
    parse(Some(format), name, text).unwrap().1
}

const NGINX_OLD: &str = "\
nginx: the configuration file /etc/nginx/nginx.conf syntax is ok
# configuration file /etc/nginx/nginx.conf:
events { worker_connections 512; }
http {
    include conf.d/*.conf;
    client_max_body_size 1m;
}

# configuration file /etc/nginx/conf.d/site.conf:
server {
    listen 443 ssl;
    server_name old.example;
    ssl_protocols TLSv1.2 TLSv1.3;
    location /api { proxy_pass http://backend; }
}
";

#[test]
fn nginx_directives_are_keyed_by_their_block_and_included_file() {
    let e = entries(Format::Nginx, "nginx -T", NGINX_OLD);
    let find = |k: &str| {
        e.iter()
            .find(|e| e.key == k)
            .unwrap_or_else(|| panic!("{k} in {e:#?}"))
    };
    let p = find("http.server[listen 443 ssl].ssl_protocols");
    assert_eq!(p.value, "TLSv1.2 TLSv1.3");
    assert_eq!(p.source.as_deref(), Some("/etc/nginx/conf.d/site.conf:4"));
    assert_eq!(
        find("http.server[listen 443 ssl].location[/api].proxy_pass").value,
        "http://backend"
    );
    assert_eq!(
        find("http.client_max_body_size").source.as_deref(),
        Some("/etc/nginx/nginx.conf:4")
    );
    assert!(
        e.iter().all(|e| e.key != "http.include"),
        "an include that matched is expanded"
    );
}

#[test]
fn nginx_reordered_and_recommented_is_equal_and_a_changed_value_is_found() {
    let new = "\
# configuration file /etc/nginx/nginx.conf:
# a comment
http {
  client_max_body_size   1m ;   # trailing
    include conf.d/*.conf;
}
events {
  worker_connections 512;
}
# configuration file /etc/nginx/conf.d/site.conf:
server {
    ssl_protocols TLSv1.3;
    server_name new.example;
    location /api {
        proxy_pass http://backend;
    }
    listen 443 ssl;
}
";
    let old = entries(Format::Nginx, "old", NGINX_OLD);
    let new = entries(Format::Nginx, "new", new);
    let opts = Options {
        allow: vec!["*.server_name".into()],
        ..Default::default()
    };
    let c = compare(&old, &new, &opts);
    assert_eq!(c.differences.len(), 1, "{c:#?}");
    let d = &c.differences[0];
    assert_eq!(d.key, "http.server[listen 443 ssl].ssl_protocols");
    assert_eq!(
        d.old.as_ref().unwrap().value.as_deref(),
        Some("TLSv1.2 TLSv1.3")
    );
    assert_eq!(d.new.as_ref().unwrap().value.as_deref(), Some("TLSv1.3"));
    assert_eq!(
        d.new.as_ref().unwrap().source.as_deref(),
        Some("/etc/nginx/conf.d/site.conf:2")
    );
    assert_eq!(c.allowed.len(), 1);
    assert_eq!(c.allowed[0].allowed_by.as_deref(), Some("*.server_name"));
}

#[test]
fn nginx_syntax_errors_name_file_and_line() {
    let e = parse(
        Some(Format::Nginx),
        "x",
        "# configuration file /a.conf:\nhttp {\n  a b\n}\n",
    )
    .unwrap_err();
    assert!(e.contains("/a.conf:2"), "{e}");
    let e = parse(Some(Format::Nginx), "x", "http {\n").unwrap_err();
    assert!(e.contains("never closed"), "{e}");
}

#[test]
fn rewrites_apply_to_the_old_side_before_comparing() {
    let old = entries(Format::Equals, "a", "host=old.example\nport=5432\n");
    let new = entries(Format::Equals, "b", "port=5432\nhost=new.example\n");
    let opts = Options {
        rewrite: vec![Rewrite::parse("old.example=new.example").unwrap()],
        ..Default::default()
    };
    assert!(compare(&old, &new, &opts).is_equal());
    assert!(!compare(&old, &new, &Options::default()).is_equal());
}

#[test]
fn ini_sections_and_key_order_do_not_matter() {
    let old = entries(Format::Ini, "a.ini", "[a]\nx = 1\ny = 2\n[b]\nz=3\n");
    let new = entries(Format::Ini, "a.ini", "; c\n[b]\nz = 3\n\n[a]\ny=2\nx=1\n");
    let c = compare(&old, &new, &Options::default());
    assert!(c.is_equal(), "{c:#?}");
    assert_eq!(c.keys, 3);
}

#[test]
fn json_leaf_changed_is_named_by_its_path() {
    let old = entries(
        Format::Json,
        "a.json",
        r#"{"a":{"b":[1,{"c":"x"}]},"d":true}"#,
    );
    let new = entries(
        Format::Json,
        "a.json",
        r#"{"d":true,"a":{"b":[1,{"c":"y"}]}}"#,
    );
    let c = compare(&old, &new, &Options::default());
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].key, "a.b[1].c");
}

#[test]
fn toml_is_a_tree() {
    let old = entries(Format::Toml, "a.toml", "[s]\na = 1\nb = \"x\"\n");
    let new = entries(Format::Toml, "a.toml", "[s]\nb = \"x\"\na = 2\n");
    let c = compare(&old, &new, &Options::default());
    assert_eq!(c.differences.len(), 1);
    assert_eq!(c.differences[0].key, "s.a");
}

#[test]
fn spaced_repeated_keys_are_a_multiset() {
    let old = entries(Format::Spaced, "sshd", "Port 22\nHostKey /a\nHostKey /b\n");
    let new = entries(Format::Spaced, "sshd", "hostkey /b\nport 22\nhostkey /a\n");
    assert!(compare(&old, &new, &Options::default()).is_equal());
    let new = entries(Format::Spaced, "sshd", "hostkey /b\nport 22\n");
    let c = compare(&old, &new, &Options::default());
    assert_eq!(c.differences.len(), 1);
    assert!(c.differences[0].new.is_none());
}

#[test]
fn secrets_are_compared_and_never_held() {
    let old = entries(Format::Equals, "a", "requirepass=hunter2-old\nuser=app\n");
    let new = entries(Format::Equals, "b", "requirepass=hunter2-new\nuser=app\n");
    let c = compare(&old, &new, &Options::default());
    assert_eq!(c.differences.len(), 1);
    assert!(c.differences[0].secret);
    let json = serde_json::to_string(&c).unwrap();
    let text = render_human(&c, "a", "b", &[]);
    for s in [&json, &text] {
        assert!(!s.contains("hunter2"), "{s}");
    }
    assert!(text.contains("differs (secret, not shown)"), "{text}");
    // Equal secrets are equal.
    assert!(compare(&old, &old, &Options::default()).is_equal());
    // A secret named in the value, and a URL's password.
    let old = entries(
        Format::Lines,
        "f",
        "Authorization Basic c2VjcmV0\nurl postgres://u:pw1@h/db\n",
    );
    let new = entries(
        Format::Lines,
        "f",
        "Authorization Basic b3RoZXI=\nurl postgres://u:pw2@h/db\n",
    );
    let c = compare(&old, &new, &Options::default());
    let json = serde_json::to_string(&c).unwrap();
    assert!(
        !json.contains("c2VjcmV0") && !json.contains("pw1"),
        "{json}"
    );
}

#[test]
fn detection_by_shape() {
    assert_eq!(detect("x", "a=1\nb = 2\n"), Format::Equals);
    assert_eq!(detect("x", "[s]\na=1\n"), Format::Ini);
    assert_eq!(detect("x", "Port 22\nPermitRootLogin no\n"), Format::Spaced);
    assert_eq!(detect("x", "{\"a\": 1}"), Format::Json);
    assert_eq!(detect("x.toml", "a = 1"), Format::Toml);
    assert_eq!(
        detect("x", "just some text here, really\nno=\n x"),
        Format::Lines
    );
    assert_eq!(detect("x", NGINX_OLD), Format::Nginx);
}

#[test]
fn postgres_settings_name_their_file_and_line() {
    let text = r#"["DateStyle","ISO, DMY",null,"configuration file","/d/postgresql.conf",42]
["work_mem","4096","kB","default",null,null]
"#;
    let e = parse(Some(Format::Postgres), "pg", text).unwrap().1;
    assert_eq!(e[0].source.as_deref(), Some("/d/postgresql.conf:42"));
    assert_eq!(e[1].value, "4096 (unit kB)");
    assert_eq!(e[1].source.as_deref(), Some("default"));
    assert!(parse(Some(Format::Postgres), "pg", "not json").is_err());
}

#[test]
fn wildcards() {
    assert!(wildcard(
        "*.server_name",
        "http.server[listen 80].server_name",
        true
    ));
    assert!(wildcard("port", "port", true));
    assert!(!wildcard("port", "ports", true));
    assert!(wildcard(
        "/etc/nginx/conf.d/*.conf",
        "/etc/nginx/conf.d/a.conf",
        false
    ));
    assert!(!wildcard("/etc/*.conf", "/etc/nginx/a.conf", false));
    assert!(wildcard("a?c", "abc", true));
}

#[test]
fn control_characters_are_escaped_in_the_diff() {
    let old = entries(Format::Equals, "a", "k=\u{1b}[31mred\n");
    let new = entries(Format::Equals, "b", "k=plain\n");
    let text = render_human(&compare(&old, &new, &Options::default()), "a", "b", &[]);
    assert!(!text.contains('\u{1b}'), "{text}");
}

#[test]
fn the_plan_names_the_formats_this_crate_reads() {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names, rehost_plan::CONFIG_FORMATS);
}
