use super::words::SyntaxError;
use super::*;

fn parse(name: &str, text: &str) -> UnitFile {
    UnitFile::parse(name, text.as_bytes()).unwrap()
}

fn values<'a>(unit: &'a UnitFile, key: &'a str) -> Vec<&'a str> {
    unit.get("Service", key).map(|a| a.value.as_str()).collect()
}

/// The requirements of a `[Service]` section, as `(path, kind)` pairs.
fn needs(name: &str, service: &str) -> Vec<(String, Kind)> {
    let unit = parse(name, &format!("[Service]\n{service}"));
    let found = requirements(&unit).unwrap();
    found.mount_points.into_iter().map(|m| (m.path, m.kind)).collect()
}

fn dirs(paths: &[&str]) -> Vec<(String, Kind)> {
    paths.iter().map(|p| (p.to_string(), Kind::Directory)).collect()
}

fn error(name: &str, service: &str) -> Error {
    let unit = parse(name, &format!("[Service]\n{service}"));
    requirements(&unit).unwrap_err()
}

fn problem(name: &str, service: &str) -> Problem {
    match error(name, service).kind {
        ErrorKind::Value { problem, .. } => *problem,
        other => panic!("not a value error: {other:?}"),
    }
}

// ------------------------------------------------------------ reading

#[test]
fn continuation_lines() {
    let unit = parse(
        "app.service",
        "[Service]\nStateDirectory=a \\\n  b\\\nc\nCacheDirectory=x\n",
    );
    // The backslash becomes a space; the next line is appended as is.
    assert_eq!(values(&unit, "StateDirectory"), ["a    b c"]);
    assert_eq!(values(&unit, "CacheDirectory"), ["x"]);
    assert_eq!(unit.get("Service", "StateDirectory").next().unwrap().line, 2);
}

#[test]
fn continuation_at_end_of_file_and_even_backslashes() {
    let unit = parse("app.service", "[Service]\nA=x\\\\\nB=y \\");
    assert_eq!(values(&unit, "A"), ["x\\\\"]);
    assert_eq!(values(&unit, "B"), ["y"]);
}

#[test]
fn comments() {
    let unit = parse(
        "app.service",
        "# comment\n[Service]\n  ; also a comment\nA=1 # not a comment\n\
         B=x \\\n# a comment inside a continuation is skipped\n  y\n",
    );
    assert_eq!(values(&unit, "A"), ["1 # not a comment"]);
    assert_eq!(values(&unit, "B"), ["x    y"]);
}

#[test]
fn line_ends_and_byte_order_mark() {
    let text = b"\xef\xbb\xbf[Service]\r\nA=1\r\nB=2\rC=3\n\rD=4\0E=5";
    let unit = UnitFile::parse("app.service", text).unwrap();
    let keys: Vec<(&str, &str)> = unit
        .assignments()
        .iter()
        .map(|a| (a.key.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        keys,
        [("A", "1"), ("B", "2"), ("C", "3"), ("D", "4"), ("E", "5")]
    );
}

#[test]
fn keys_values_and_sections() {
    let unit = parse(
        "app.service",
        "A=outside\n[Unit]\nA=1\n[Service]\n  Key  =  a = b  \nno equals\n=x\n\
         [X-Custom]\nA=2\n",
    );
    let all: Vec<(&str, &str, &str)> = unit
        .assignments()
        .iter()
        .map(|a| (a.section.as_str(), a.key.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(
        all,
        [
            ("Unit", "A", "1"),
            ("Service", "Key", "a = b"),
            ("X-Custom", "A", "2")
        ]
    );
}

#[test]
fn bad_section_headers_are_refused() {
    for header in ["[Service", "[Service] # comment", "[Ser\"vice]"] {
        let text = format!("{header}\nA=1\n");
        let err = UnitFile::parse("app.service", text.as_bytes()).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::SectionHeader { line: 1, .. }),
            "{header}"
        );
        assert!(
            err.to_string().contains("unit 'app.service', line 1"),
            "{err}"
        );
    }
}

#[test]
fn invalid_unit_names_are_refused() {
    let err = UnitFile::parse("app", b"").unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnitName);
}

// ------------------------------------------------------------ directories

#[test]
fn directory_settings() {
    assert_eq!(
        needs(
            "app.service",
            "StateDirectory=s\nCacheDirectory=c\nLogsDirectory=l\n\
             ConfigurationDirectory=e\nRuntimeDirectory=r\n",
        ),
        dirs(&["/var/lib/s", "/var/cache/c", "/var/log/l", "/etc/e"])
    );
}

#[test]
fn several_values_lines_and_resets() {
    assert_eq!(
        needs("app.service", "StateDirectory=a b\nStateDirectory=c\n"),
        dirs(&["/var/lib/a", "/var/lib/b", "/var/lib/c"])
    );
    assert_eq!(
        needs(
            "app.service",
            "StateDirectory=a b\nStateDirectory=\nStateDirectory=c\n"
        ),
        dirs(&["/var/lib/c"])
    );
    // A reset empties only its own setting.
    assert_eq!(
        needs(
            "app.service",
            "CacheDirectory=a\nStateDirectory=b\nStateDirectory=\n"
        ),
        dirs(&["/var/cache/a"])
    );
}

#[test]
fn quoting_and_escapes() {
    assert_eq!(
        needs(
            "app.service",
            "StateDirectory=\"a b\" 'c d' e\\x2df a//b/./c/\n"
        ),
        dirs(&[
            "/var/lib/a b",
            "/var/lib/c d",
            "/var/lib/e-f",
            "/var/lib/a/b/c"
        ])
    );
    assert_eq!(
        problem("app.service", "StateDirectory=\"a b\n"),
        Problem::Syntax(SyntaxError::UnbalancedQuotes)
    );
}

#[test]
fn escaped_colons() {
    // The word keeps its backslashes until the split at ':', which turns
    // "\:" into a plain colon.
    assert_eq!(
        needs("app.service", "StateDirectory=a\\:b:c"),
        [
            ("/var/lib/a:b".to_string(), Kind::Directory),
            ("/var/lib/c".to_string(), Kind::Symlink { target: "a:b".into() })
        ]
    );
    // BindPaths= takes the next character literally.
    assert_eq!(
        needs("app.service", "BindPaths=/x:/a\\:b"),
        [("/a:b".to_string(), Kind::BindTarget)]
    );
}

#[test]
fn directory_values_systemd_refuses() {
    for (value, expected) in [
        ("/abs", Problem::NotRelative("/abs".into())),
        ("../x", Problem::NotNormalized("../x".into())),
        (".", Problem::NotNormalized(".".into())),
        ("private", Problem::Private),
        ("private/x", Problem::Private),
        ("a:b:rw", Problem::BadFlags("rw".into())),
        ("%x", Problem::UnknownSpecifier('x')),
    ] {
        assert_eq!(
            problem("app.service", &format!("StateDirectory={value}")),
            expected,
            "{value}"
        );
    }
    assert_eq!(
        problem("app.service", "ConfigurationDirectory=a:b"),
        Problem::ConfigurationLink
    );
    // "privately" is not "private/...".
    assert_eq!(
        needs("app.service", "StateDirectory=privately"),
        dirs(&["/var/lib/privately"])
    );
}

#[test]
fn entries_below_another_need_no_mount_point() {
    assert_eq!(
        needs("app.service", "StateDirectory=a/b a"),
        dirs(&["/var/lib/a"])
    );
    assert_eq!(
        needs("app.service", "StateDirectory=a/b"),
        dirs(&["/var/lib/a/b"])
    );
    // Only the same setting counts.
    assert_eq!(
        needs("app.service", "StateDirectory=a\nCacheDirectory=a/b"),
        dirs(&["/var/lib/a", "/var/cache/a/b"])
    );
    // 257's ':ro' still mounts the child, to make it read-only.
    assert_eq!(
        needs("app.service", "StateDirectory=a a/b::ro"),
        dirs(&["/var/lib/a", "/var/lib/a/b"])
    );
}

#[test]
fn symlinks() {
    let link = |path: &str, target: &str| {
        (path.to_string(), Kind::Symlink { target: target.to_string() })
    };
    assert_eq!(
        needs("app.service", "StateDirectory=foo:bar"),
        [
            ("/var/lib/foo".to_string(), Kind::Directory),
            link("/var/lib/bar", "foo")
        ]
    );
    assert_eq!(
        needs("app.service", "StateDirectory=a/foo:b/c/bar"),
        [
            ("/var/lib/a/foo".to_string(), Kind::Directory),
            link("/var/lib/b/c/bar", "../../a/foo")
        ]
    );
    // The same name again adds its link to the first entry.
    assert_eq!(
        needs("app.service", "LogsDirectory=foo foo:bar foo:baz"),
        [
            ("/var/log/foo".to_string(), Kind::Directory),
            link("/var/log/bar", "foo"),
            link("/var/log/baz", "foo")
        ]
    );
    // Under /run nothing is needed.
    assert_eq!(needs("app.service", "RuntimeDirectory=foo:bar"), []);
}

#[test]
fn read_only_flag_and_older_systemd() {
    let unit =
        parse("app.service", "[Service]\nStateDirectory=a::ro b:c:ro d:e\n");
    let found = requirements(&unit).unwrap();
    assert_eq!(
        found.warnings.iter().map(|w| w.kind.clone()).collect::<Vec<_>>(),
        [
            WarningKind::SplitBefore257 {
                name: "a".into(),
                link: Some("ro".into())
            },
            WarningKind::ReadOnlyIgnoredBefore257,
        ]
    );
    let text = found.warnings[0].to_string();
    assert!(
        text.starts_with("unit 'app.service', line 2: StateDirectory=a::ro: "),
        "{text}"
    );
    assert_eq!(
        needs("app.service", "ConfigurationDirectory=a::ro"),
        dirs(&["/etc/a"])
    );
}

// ------------------------------------------------------------ specifiers

#[test]
fn specifiers_from_the_unit_name() {
    assert_eq!(
        needs(
            "my-app.service",
            "StateDirectory=%N.d %p/%i%j x%%y\nCacheDirectory=%n"
        ),
        dirs(&[
            "/var/lib/my-app.d",
            "/var/lib/my-app/app",
            "/var/lib/x%y",
            "/var/cache/my-app.service"
        ])
    );
    // An instance unit file knows its instance.
    assert_eq!(
        needs("app@one.service", "StateDirectory=app/%i"),
        dirs(&["/var/lib/app/one"])
    );
    assert_eq!(
        needs(
            "app.service",
            "BindPaths=/srv:%S/x %T/t\nTemporaryFileSystem=%C/c"
        ),
        [
            ("/var/lib/x".to_string(), Kind::BindTarget),
            ("/tmp/t".to_string(), Kind::BindTarget),
            ("/var/cache/c".to_string(), Kind::Directory)
        ]
    );
}

#[test]
fn instance_specifiers_in_a_template() {
    let err = error("app@.service", "StateDirectory=app/%i");
    assert_eq!(
        err.kind,
        ErrorKind::Value {
            setting: "StateDirectory",
            value: "app/%i".into(),
            line: 2,
            problem: Box::new(Problem::Unresolvable {
                path: "/var/lib/app/%i".into(),
                specifier: 'i',
                parent: Some("app app/%i".into()),
            }),
        }
    );
    let text = err.to_string();
    assert!(
        text.starts_with(
            "unit 'app@.service', line 2: StateDirectory=app/%i: "
        ),
        "{text}"
    );
    assert!(text.contains("(StateDirectory=app app/%i)"), "{text}");
    // The fix the message gives works: the parent is mounted, the instance
    // directory is created inside it on the host.
    assert_eq!(
        needs("app@.service", "StateDirectory=app app/%i"),
        dirs(&["/var/lib/app"])
    );
    assert_eq!(
        needs("app@.service", "StateDirectory=%p %p/%i"),
        dirs(&["/var/lib/app"])
    );
    // ... but not for a read-only child, which is mounted itself.
    assert!(matches!(
        problem("app@.service", "StateDirectory=app app/%i::ro"),
        Problem::Unresolvable { specifier: 'i', .. }
    ));
    // With the specifier in the first component there is no parent.
    assert!(matches!(
        problem("app@.service", "StateDirectory=%i"),
        Problem::Unresolvable { specifier: 'i', parent: None, .. }
    ));
    assert!(matches!(
        problem("app@.service", "BindPaths=/srv/%i"),
        Problem::Unresolvable { specifier: 'i', parent: None, .. }
    ));
    // Under /run it does not matter.
    assert_eq!(
        needs("app@.service", "RuntimeDirectory=%i\nBindPaths=/x:/run/%n"),
        []
    );
}

#[test]
fn host_specifiers() {
    for (value, specifier) in [
        ("StateDirectory=%H", 'H'),
        ("BindPaths=/x:/srv/%m", 'm'),
        ("WorkingDirectory=%h", 'h'),
    ] {
        assert!(
            matches!(
                problem("app.service", value),
                Problem::Unresolvable { specifier: s, .. } if s == specifier
            ),
            "{value}"
        );
    }
}

#[test]
fn specifier_added_in_257() {
    let unit = parse("app.service", "[Service]\nBindReadOnlyPaths=%D/doc\n");
    let found = requirements(&unit).unwrap();
    assert_eq!(found.mount_points[0].path, "/usr/share/doc");
    assert_eq!(found.warnings[0].kind, WarningKind::SpecifierAddedIn257('D'));
}

// ------------------------------------------------------------ bind mounts

#[test]
fn bind_paths_forms() {
    let binds = |paths: &[&str]| -> Vec<(String, Kind)> {
        paths.iter().map(|p| (p.to_string(), Kind::BindTarget)).collect()
    };
    assert_eq!(
        needs("app.service", "BindPaths=/srv/data"),
        binds(&["/srv/data"])
    );
    assert_eq!(
        needs(
            "app.service",
            "BindPaths=-/host/a:/srv/a /host/b:/srv/b:norbind \
             \"/h c\":/srv/c:rbind\n\
             BindReadOnlyPaths=/etc/ssl/certs -/etc/missing-is-fine",
        ),
        binds(&[
            "/srv/a",
            "/srv/b",
            "/srv/c",
            "/etc/ssl/certs",
            "/etc/missing-is-fine"
        ])
    );
    // Two separators in a row: systemd skips the empty word.
    assert_eq!(needs("app.service", "BindPaths=/a  /b"), binds(&["/a", "/b"]));
    assert_eq!(
        problem("app.service", "BindPaths=/a:/b:bogus"),
        Problem::BadBindOption("bogus".into())
    );
    assert_eq!(
        problem("app.service", "BindPaths=/a:"),
        Problem::MissingDestination
    );
    assert_eq!(
        problem("app.service", "BindPaths=/a:relative"),
        Problem::NotAbsolute("relative".into())
    );
}

#[test]
fn bind_settings_share_one_list() {
    assert_eq!(
        needs(
            "app.service",
            "BindPaths=/a\nBindReadOnlyPaths=\nBindReadOnlyPaths=/b"
        ),
        [("/b".to_string(), Kind::BindTarget)]
    );
}

#[test]
fn bind_values_name_the_element() {
    let err = error("app.service", "BindPaths=/ok /x:/dst:sideways");
    let ErrorKind::Value { value, problem, .. } = &err.kind else { panic!() };
    assert_eq!(value, "/x:/dst:sideways");
    assert_eq!(**problem, Problem::BadBindOption("sideways".into()));
    let text = err.to_string();
    assert!(
        text.contains("BindPaths=/x:/dst:sideways: 'sideways' is not"),
        "{text}"
    );
}

/// What each setting does at its path, from which the builder decides
/// whether the path may be in or above the store.
#[test]
fn what_settings_do_at_their_paths() {
    let unit = parse(
        "app.service",
        "[Service]\nBindPaths=/x:/b\nTemporaryFileSystem=/t\n\
         InaccessiblePaths=/i\nReadOnlyPaths=/r\nWorkingDirectory=/w\n",
    );
    let found: Vec<(String, Mounts)> = requirements(&unit)
        .unwrap()
        .mount_points
        .into_iter()
        .map(|m| (m.path, m.mounts))
        .collect();
    let expected = [
        ("/b", Mounts::Yes),
        ("/i", Mounts::Hides),
        ("/r", Mounts::No),
        ("/t", Mounts::Yes),
        ("/w", Mounts::No),
    ];
    for (path, mounts) in expected {
        assert!(
            found.contains(&(path.to_string(), mounts)),
            "{path}: {found:?}"
        );
    }
}

#[test]
fn the_store() {
    // Settings that only need the path to exist may name one in the
    // closure; the builder checks the closure has it.
    let inside = "/nix/store/abc-foo/share";
    assert_eq!(
        needs(
            "app.service",
            &format!("WorkingDirectory={inside}\nReadOnlyPaths={inside}")
        ),
        [
            (inside.to_string(), Kind::Existing),
            (inside.to_string(), Kind::Directory)
        ]
    );
}

// ------------------------------------------------------------ other settings

#[test]
fn access_paths() {
    assert_eq!(
        needs(
            "app.service",
            "ReadWritePaths=/var/lib/rw -/var/lib/optional +/var/lib/plus\n\
             ReadOnlyPaths=/srv/ro\nInaccessiblePaths=/srv/secret\n\
             ExecPaths=/opt/bin\nNoExecPaths=/srv/data\nReadOnlyPaths=/run/x",
        ),
        [
            ("/var/lib/rw".to_string(), Kind::Existing),
            ("/var/lib/plus".to_string(), Kind::Existing),
            ("/srv/ro".to_string(), Kind::Existing),
            ("/srv/secret".to_string(), Kind::Existing),
            ("/opt/bin".to_string(), Kind::Existing),
            ("/srv/data".to_string(), Kind::Existing),
        ]
    );
    assert_eq!(needs("app.service", "ReadWritePaths=/a\nReadWritePaths="), []);
}

#[test]
fn temporary_file_systems() {
    assert_eq!(
        needs(
            "app.service",
            "TemporaryFileSystem=/var/lib/t:ro,size=1M \"/srv/a b\"\n"
        ),
        dirs(&["/var/lib/t", "/srv/a b"])
    );
    assert_eq!(
        needs("app.service", "TemporaryFileSystem=/a\nTemporaryFileSystem="),
        []
    );
}

#[test]
fn working_directory() {
    assert_eq!(
        needs("app.service", "WorkingDirectory=/srv/app"),
        dirs(&["/srv/app"])
    );
    assert_eq!(
        needs("app.service", "WorkingDirectory=/a\nWorkingDirectory=/b"),
        dirs(&["/b"])
    );
    for optional in ["-/srv/app", "-~", "/a\nWorkingDirectory="] {
        assert_eq!(
            needs("app.service", &format!("WorkingDirectory={optional}")),
            [],
            "{optional}"
        );
    }
    assert_eq!(
        problem("app.service", "WorkingDirectory=~"),
        Problem::HomeDirectory
    );
    // The value is not unquoted.
    assert_eq!(
        problem("app.service", "WorkingDirectory=\"/srv\""),
        Problem::NotAbsolute("\"/srv\"".into())
    );
}

#[test]
fn settings_that_need_nothing() {
    assert_eq!(
        needs(
            "app.service",
            "EnvironmentFile=/etc/app.env\nPrivateTmp=yes\n\
             RuntimeDirectory=app\nExecStart=/bin/true\n\
             BindPaths=/x:/proc/y /x:/dev/z /x:/sys/w",
        ),
        []
    );
}

#[test]
fn dynamic_user_changes_nothing() {
    let service = "StateDirectory=a\nCacheDirectory=b\nLogsDirectory=c\n\
                   ConfigurationDirectory=d\nBindPaths=/srv/e\n";
    let plain = needs("app.service", service);
    assert_eq!(
        needs("app.service", &format!("DynamicUser=yes\n{service}")),
        plain
    );
    assert_eq!(
        needs("app.service", &format!("DynamicUser=no\n{service}")),
        plain
    );
    // Not /var/lib/private/...: with RootImage= systemd binds the private
    // directory onto the public path.
    assert_eq!(plain[0].0, "/var/lib/a");
}

#[test]
fn only_the_service_section_of_services() {
    assert_eq!(needs("app.service", "[Unit]\nStateDirectory=x"), []);
    let socket = parse("app.socket", "[Service]\nStateDirectory=x\n");
    assert_eq!(requirements(&socket).unwrap(), Requirements::default());
}

#[test]
fn origins() {
    let unit = parse("app.service", "[Service]\n\nStateDirectory=a \\\n b\n");
    let found = requirements(&unit).unwrap();
    let origin = &found.mount_points[1].origin;
    assert_eq!(
        origin,
        &Origin {
            unit: "app.service".into(),
            setting: "StateDirectory",
            value: "b".into(),
            line: 3
        }
    );
}
