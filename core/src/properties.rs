//! Property tests of every parser and builder fed by users or files: port
//! and volume specs, template substitution and variable extraction, the
//! state file, the image manifest, `config.yaml`, GitHub's release JSON,
//! the QEMU argument builder and the remote-shell quoting of `exec`.
//!
//! Each property runs a bounded number of cases (see [`cases`]) so the
//! whole set stays within seconds of the normal `cargo test`.
//! `PROPTEST_CASES` raises every bound for a longer hunt.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use proptest::prelude::*;

use crate::container::{Container, Status};
use crate::hypervisor::{Accel, BootImage, Hypervisor, PortForward, QemuHypervisor, Share, VmSpec};
use crate::image::{ImageFormat, KernelImage};
use crate::options::{add_port_spec, parse_port_spec, parse_volume_spec};
use crate::state::StateFile;
use crate::templates::{apply_variables, extract_variables, TemplateError};
use crate::RunOptions;

/// `n` cases, or `PROPTEST_CASES` when it asks for more.
fn cases(n: u32) -> ProptestConfig {
    let env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    ProptestConfig {
        cases: n.max(env),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any text, weighted towards the characters parsers care about.
fn tricky() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(vec![
                ":", "/", "$", "{", "}", "${", ":-", ",", ",,", "=", "[", "]", "\"", "'",
                "\\", "\n", " ", "-", "%", ".", "..", "0", "8080", "::1", "0.0.0.0", "é", "\u{0}",
            ])
            .prop_map(str::to_string),
            1 => any::<String>(),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

fn id() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}"
}

// ---- port and volume specs ------------------------------------------------

proptest! {
    #![proptest_config(cases(512))]

    /// No input panics, and whatever is accepted has ports in range.
    #[test]
    fn port_spec_never_panics(spec in tricky()) {
        if let Ok(p) = parse_port_spec(&spec) {
            prop_assert!(p.host >= 1 && p.guest >= 1);
        }
        let mut o = RunOptions::default();
        let _ = add_port_spec(&mut o, &spec);
    }

    /// Every well-formed spec reads back as written, with its own address.
    #[test]
    fn port_spec_round_trips(
        host in 1u16..,
        guest in 1u16..,
        ip in prop::option::of(any::<IpAddr>()),
    ) {
        let spec = match ip {
            None => format!("{host}:{guest}"),
            Some(IpAddr::V4(a)) => format!("{a}:{host}:{guest}"),
            Some(IpAddr::V6(a)) => format!("[{a}]:{host}:{guest}"),
        };
        let p = parse_port_spec(&spec).unwrap();
        prop_assert_eq!((p.bind, p.host, p.guest), (ip, host, guest));
        let mut o = RunOptions::default();
        add_port_spec(&mut o, &spec).unwrap();
        prop_assert_eq!(o.bind_addresses.get(&host).copied(), ip);
    }

    /// Each mapping keeps its own listen address: no spec widens another.
    #[test]
    fn listen_addresses_never_spread(
        specs in prop::collection::btree_map(
            1u16..,
            (1u16.., prop::option::of(any::<Ipv4Addr>())),
            1..6,
        ),
    ) {
        let mut o = RunOptions::default();
        for (h, (g, ip)) in &specs {
            let spec = match ip {
                Some(a) => format!("{a}:{h}:{g}"),
                None => format!("{h}:{g}"),
            };
            add_port_spec(&mut o, &spec).unwrap();
        }
        let cfg = crate::options::validate(&o).unwrap();
        for (h, (_, ip)) in &specs {
            let want = ip.map(IpAddr::V4).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            let got = cfg.binds.get(h).copied().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
            prop_assert_eq!(got, want);
        }
    }

    /// `HOST:GUEST` splits at the last `:/`, so a host path may hold `:`.
    #[test]
    fn volume_spec_round_trips(host in "[^\u{0}]{1,20}", guest in "/[^:\u{0}]{0,20}") {
        let (h, g) = parse_volume_spec(&format!("{host}:{guest}")).unwrap();
        prop_assert_eq!((h, g), (PathBuf::from(&host), guest));
    }

    #[test]
    fn volume_spec_never_panics(spec in tricky()) {
        let _ = parse_volume_spec(&spec);
    }
}

// ---- templates --------------------------------------------------------------

/// Template text as pieces: literal text (no `$`), or a reference.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Var(String, Option<String>),
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        "[^$]{0,12}".prop_map(Piece::Text),
        (name(), prop::option::of("[^$}\n]{0,8}")).prop_map(|(n, d)| Piece::Var(n, d)),
    ]
}

fn render(pieces: &[Piece]) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.clone(),
            Piece::Var(n, None) => format!("${{{n}}}"),
            Piece::Var(n, Some(d)) => format!("${{{n}:-{d}}}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(cases(512))]

    /// Substitution is one pass: values are inserted verbatim (even when
    /// they look like references), defaults fill what is not given.
    #[test]
    fn substitution_is_one_pass(
        pieces in prop::collection::vec(piece(), 0..10),
        values in prop::collection::btree_map(name(), tricky(), 0..6),
    ) {
        let text = render(&pieces);
        let mut want = String::new();
        let mut missing = std::collections::BTreeSet::new();
        for p in &pieces {
            match p {
                Piece::Text(t) => want.push_str(t),
                Piece::Var(n, d) => match (values.get(n), d) {
                    (Some(v), _) => want.push_str(v),
                    (None, Some(d)) => want.push_str(d),
                    (None, None) => { missing.insert(n.clone()); }
                },
            }
        }
        match apply_variables(&text, &values) {
            Ok(out) => {
                prop_assert!(missing.is_empty());
                prop_assert_eq!(out, want);
            }
            Err(TemplateError::MissingVariables { names }) => {
                prop_assert_eq!(names, missing.into_iter().collect::<Vec<_>>());
            }
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    /// What extraction calls required is exactly what applying without
    /// values reports missing; supplying those makes it apply.
    #[test]
    fn extraction_agrees_with_substitution(pieces in prop::collection::vec(piece(), 0..10)) {
        let text = render(&pieces);
        let (required, optional) = extract_variables(&text);
        for r in &required {
            prop_assert!(!optional.contains_key(r));
        }
        match apply_variables(&text, &BTreeMap::new()) {
            Ok(_) => prop_assert!(required.is_empty()),
            Err(TemplateError::MissingVariables { names }) => prop_assert_eq!(&names, &required),
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
        let all: BTreeMap<String, String> =
            required.iter().map(|r| (r.clone(), "v".to_string())).collect();
        prop_assert!(apply_variables(&text, &all).is_ok());
    }

    /// Arbitrary text never panics either function, and a nested default
    /// is always refused rather than half-expanded.
    #[test]
    fn templates_never_panic(text in tricky(), values in prop::collection::btree_map(name(), tricky(), 0..3)) {
        let _ = extract_variables(&text);
        let _ = crate::templates::unused_variables(&text, &values);
        let _ = crate::templates::resources(&text, &values);
        let _ = apply_variables(&text, &values);
        let nested = format!("{text}${{A:-${{B}}}}");
        let refused = matches!(
            apply_variables(&nested, &values),
            Err(TemplateError::NestedDefault { .. })
        );
        prop_assert!(refused);
    }
}

// ---- the state file -------------------------------------------------------

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Running),
        Just(Status::Stopped),
        Just(Status::Error),
        Just(Status::Killed),
        "[a-z]{1,8}".prop_map(|s| Status::parse(&s)),
    ]
}

fn container() -> impl Strategy<Value = Container> {
    (
        id(),
        "[A-Za-z0-9_.-]{0,12}",
        tricky(),
        status(),
        any::<i32>(),
        (0i64..4_000_000_000).prop_map(|s| chrono::DateTime::from_timestamp(s, 0).unwrap()),
        prop::collection::btree_map(any::<u16>(), any::<u16>(), 0..4),
        prop::collection::btree_map(any::<u16>(), any::<IpAddr>(), 0..3),
        (any::<u32>(), any::<u32>(), any::<u16>()),
        prop::collection::btree_map(tricky(), tricky(), 0..3),
        prop::collection::btree_map("x_[a-z]{1,6}", any::<i64>(), 0..3),
    )
        .prop_map(
            |(id, name, image, status, pid, started_at, ports, binds, (memory, cpus, ssh_port), volumes, extra)| {
                serde_json::from_value::<Container>(serde_json::json!({
                    "id": id, "image": "", "status": "stopped", "started_at": "2025-01-01T00:00:00Z",
                }))
                .map(|mut c| {
                    c.name = name;
                    c.image = image;
                    c.status = status;
                    c.pid = pid;
                    c.started_at = started_at;
                    c.ports = ports;
                    c.bind_addresses = binds;
                    c.memory = memory;
                    c.cpus = cpus;
                    c.ssh_port = ssh_port;
                    c.volumes = volumes;
                    c.extra = extra.into_iter().map(|(k, v)| (k, v.into())).collect();
                    c
                })
                .unwrap()
            },
        )
}

proptest! {
    #![proptest_config(cases(96))]

    /// What is written reads back the same.
    #[test]
    fn state_file_round_trips(list in prop::collection::vec(container(), 0..6)) {
        let st = StateFile {
            containers: list.into_iter().map(|c| (c.id.clone(), c)).collect(),
            ..Default::default()
        };
        let back = StateFile::from_json(&st.to_json()).unwrap();
        prop_assert_eq!(back, st);
    }

    /// Any keys: usable records have valid IDs equal to their keys, the
    /// rest are kept as damaged, and none is lost in a write.
    #[test]
    fn no_record_is_lost_or_trusted_by_mistake(
        recs in prop::collection::btree_map(tricky(), (tricky(), status()), 0..6),
    ) {
        let mut file = serde_json::Map::new();
        for (k, (id, s)) in &recs {
            file.insert(k.clone(), serde_json::json!({
                "id": id, "image": "/i", "status": s.as_str(), "started_at": "2025-01-01T00:00:00Z",
            }));
        }
        let text = serde_json::to_vec(&serde_json::json!({ "containers": file })).unwrap();
        let st = StateFile::from_json(&text).unwrap();
        for (k, c) in &st.containers {
            prop_assert!(crate::id::is_valid_id(k) && &c.id == k);
        }
        prop_assert_eq!(st.containers.len() + st.damaged.len(), recs.len());
        let again = StateFile::from_json(&st.to_json()).unwrap();
        prop_assert_eq!(again, st);
    }

    /// Garbage never panics the reader.
    #[test]
    fn state_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), text in tricky()) {
        let _ = StateFile::from_json(&bytes);
        let _ = StateFile::from_json(text.as_bytes());
        let _ = StateFile::from_json(format!(r#"{{"containers": {{"{}": {text}}}}}"#, text.escape_default()).as_bytes());
    }

    /// A key repeated anywhere is found, so no record is silently dropped.
    #[test]
    fn duplicate_keys_are_always_found(
        list in prop::collection::vec(container(), 1..4),
        pick in any::<prop::sample::Index>(),
    ) {
        let st = StateFile {
            containers: list.into_iter().map(|c| (c.id.clone(), c)).collect(),
            ..Default::default()
        };
        let text = String::from_utf8(st.to_json()).unwrap();
        prop_assert_eq!(crate::json_keys::find_duplicate_key(text.as_bytes()), None);
        // Repeat one record's `"id": ...` line inside its own object.
        let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("\"id\"")).collect();
        let line = lines[pick.index(lines.len())];
        let dup = text.replacen(line, &format!("{line}\n{line}"), 1);
        let found = crate::json_keys::find_duplicate_key(dup.as_bytes());
        prop_assert_eq!(found.map(|d| d.key), Some("id".to_string()));
        prop_assert!(StateFile::from_json(dup.as_bytes()).is_err());
    }

    /// Status strings survive a round trip, known or not.
    #[test]
    fn statuses_round_trip(s in any::<String>()) {
        let parsed = Status::parse(&s);
        prop_assert_eq!(parsed.as_str(), s.as_str());
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), parsed);
    }
}

// ---- the image manifest and config.yaml -------------------------------------

/// Needs the dev environment and image sources (`devenv` feature).
#[cfg(feature = "devenv")]
mod devenv_properties {
    use super::*;
    use std::path::Path;

    proptest! {
        #![proptest_config(cases(128))]

        /// The manifest reader never panics and refuses repeated keys.
        #[test]
        fn manifest_reader_never_panics(text in tricky(), name in tricky()) {
            let d = tempfile::tempdir().unwrap();
            let m = crate::devenv::images::ImageManager::with_sources(d.path(), "x.qcow2", vec![]);
            std::fs::write(m.manifest_path(), &text).unwrap();
            let _ = m.load_manifest();
            let entry = r#"{"version": "1", "downloaded": "2025-01-01T00:00:00Z"}"#;
            let n = serde_json::to_string(&name).unwrap();
            std::fs::write(m.manifest_path(), format!(r#"{{"images": {{{n}: {entry}, {n}: {entry}}}}}"#)).unwrap();
            prop_assert!(m.load_manifest().is_err());
        }

        /// config.yaml: any text is a config or an error naming the file;
        /// a written config reads back the same.
        #[test]
        fn config_parses_or_names_the_file(text in tricky(), repo in "[a-z]{1,5}/[a-z]{1,5}", url in "https://[a-z]{1,8}\\.example/[a-z]{0,5}", mem in prop::option::of(any::<u32>())) {
            use crate::devenv::config::Config;
            let p = Path::new("/cfg/config.yaml");
            if let Err(e) = Config::parse(p, &text) {
                prop_assert!(e.to_string().contains("/cfg/config.yaml"), "{}", e);
            }
            let mut c = Config::default();
            c.images.github.repo = repo;
            c.images.cdn.url = url;
            c.dev.memory = mem;
            let yaml = serde_norway::to_string(&c).unwrap();
            prop_assert_eq!(Config::parse(p, &yaml).unwrap(), c);
        }

        /// GitHub's release JSON: never a panic, and an accepted asset name is
        /// always a plain file name inside the images directory.
        #[test]
        fn release_json_never_escapes(names in prop::collection::vec(tricky(), 1..4), pick in any::<prop::sample::Index>(), digest in prop::option::of(tricky()), junk in tricky()) {
            let image = names[pick.index(names.len())].clone();
            let assets: Vec<serde_json::Value> = names.iter().map(|n| serde_json::json!({
                "name": n, "url": "https://api/x", "browser_download_url": "https://dl/x", "digest": digest,
            })).collect();
            let text = serde_json::json!({"tag_name": "v1", "assets": assets}).to_string();
            if let Ok(r) = crate::sources::github::parse_release("https://api/r", &text, &image) {
                let p = Path::new("/images").join(&r.file_name);
                prop_assert_eq!(p.parent(), Some(Path::new("/images")));
                prop_assert!(!r.file_name.starts_with('.') && !r.file_name.contains('/'));
            }
            let _ = crate::sources::github::parse_release("https://api/r", &junk, &image);
            let _ = serde_json::from_str::<crate::sources::cdn::CdnManifest>(&junk);
        }
    }
}

// ---- the QEMU argument builder --------------------------------------------

/// Flags QEMU reads without a value.
const BARE_FLAGS: [&str; 3] = ["-nodefaults", "-no-user-config", "-daemonize"];

/// The keys of a QEMU option list (`a=1,b=2`), split the way QEMU does:
/// `,,` is a literal comma.
fn option_keys(opt: &str) -> Vec<String> {
    opt.replace(",,", "\u{1}")
        .split(',')
        .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
        .collect()
}

fn abs_path() -> impl Strategy<Value = String> {
    tricky().prop_map(|t| format!("/{}", t.replace('\u{0}', "")))
}

proptest! {
    #![proptest_config(cases(128))]

    /// Whatever the paths, tags and command line hold, the command has the
    /// same flags in the same places, and each option list has exactly the
    /// keys the builder put there: no input adds an option.
    #[test]
    fn no_input_adds_a_qemu_option(
        image in abs_path(),
        kind in 0..3u8,
        shares in prop::collection::vec((abs_path(), tricky()), 0..3),
        log in abs_path(),
        rd in abs_path(),
        cmdline in tricky(),
        binds in prop::collection::vec(any::<Ipv4Addr>(), 0..3),
    ) {
        let d = tempfile::tempdir().unwrap();
        let cmdline_file = d.path().join("k-cmdline");
        std::fs::write(&cmdline_file, cmdline.replace('\u{0}', "")).unwrap();
        let boot = match kind {
            0 => BootImage::Iso(image.clone().into()),
            1 => BootImage::Disk { path: image.clone().into(), format: "qcow2" },
            _ => BootImage::Kernel(KernelImage {
                kernel: image.clone().into(),
                initrd: format!("{image}-initrd").into(),
                cmdline: Some(cmdline_file),
            }),
        };
        let mut ports = vec![PortForward { bind: Ipv4Addr::LOCALHOST.into(), host: 0, guest: 22 }];
        ports.extend(binds.iter().enumerate().map(|(i, b)| PortForward { bind: (*b).into(), host: 8000 + i as u16, guest: 80 }));
        let spec = VmSpec {
            id: "0a1b2c3d".into(),
            image: boot,
            memory_mb: 512,
            cpus: 1,
            ports,
            shares: shares.iter().map(|(h, t)| Share { host: h.into(), tag: t.clone() }).collect(),
            log_path: log.into(),
            runtime_dir: rd.into(),
            accel: Accel::Tcg,
            daemonize: true,
        };
        let Ok(cmd) = QemuHypervisor::with_binary("/usr/bin/qemu-system-x86_64").build_command(&spec) else {
            // Refusing (a path that is not UTF-8) is fine; adding is not.
            return Ok(());
        };
        let args = cmd.args_lossy();
        let mut flags = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let flag = args[i].clone();
            prop_assert!(flag.starts_with('-'), "value {flag:?} where a flag belongs");
            if BARE_FLAGS.contains(&flag.as_str()) {
                i += 1;
            } else {
                let value = &args[i + 1];
                let keys = option_keys(value);
                match flag.as_str() {
                    "-drive" if kind == 0 => prop_assert_eq!(keys, ["file", "media", "readonly", "format"]),
                    "-drive" => prop_assert_eq!(keys, ["file", "format"]),
                    "-chardev" if keys[0] == "pipe" => prop_assert_eq!(keys, ["pipe", "id", "path"]),
                    "-chardev" => prop_assert_eq!(keys, ["socket", "id", "path", "server", "wait", "logfile", "logappend"]),
                    "-qmp" => {
                        prop_assert!(keys[0].starts_with("unix:/"));
                        prop_assert_eq!(&keys[1..], ["server", "wait"]);
                    }
                    "-device" => prop_assert!(
                        keys == ["virtio-net-pci", "netdev"]
                            || keys == ["virtio-9p-pci", "fsdev", "mount_tag"]
                            || keys == ["virtio-serial-pci", "id"]
                            || keys == ["virtserialport", "bus", "chardev", "name"]
                            || keys == ["vmgenid", "guid"],
                        "{keys:?}"
                    ),
                    "-netdev" => {
                        let mut want = vec!["user".to_string(), "id".to_string()];
                        want.extend(std::iter::repeat_n("hostfwd".to_string(), spec.ports.len()));
                        prop_assert_eq!(keys, want);
                    }
                    "-fsdev" => prop_assert_eq!(keys, ["local", "id", "path", "security_model"]),
                    _ => {}
                }
                flags.push(flag);
                i += 2;
            }
        }
        let mut want = vec!["-name", "-accel", "-m", "-smp", "-display"];
        want.extend(if kind == 2 { vec!["-kernel", "-initrd", "-append"] } else { vec!["-drive", "-boot"] });
        // console, QMP, the agent's port and bus, the data port
        want.extend(["-chardev", "-serial", "-qmp", "-chardev", "-device", "-device", "-chardev", "-device"]);
        want.extend(["-netdev", "-device"]);
        for _ in &shares {
            want.extend(["-fsdev", "-device"]);
        }
        if cfg!(target_arch = "x86_64") {
            want.push("-device"); // vmgenid
        }
        want.push("-pidfile");
        // QEMU reads `%` in the -D file name as a format: left out then.
        if !spec.runtime_dir.to_string_lossy().contains('%') {
            want.push("-D");
        }
        prop_assert_eq!(flags, want);
    }
}

// ---- exec's remote quoting ------------------------------------------------

proptest! {
    #![proptest_config(cases(48))]

    /// Every argv survives a real POSIX shell exactly, as the guest's
    /// shell receives what `exec` sends.
    #[test]
    fn every_argv_survives_the_remote_shell(
        argv in prop::collection::vec(tricky().prop_map(|s| s.replace('\u{0}', "")), 1..6),
    ) {
        let quoted = crate::ssh::quote_remote(&argv);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s\\0' {quoted}"))
            .output()
            .unwrap();
        prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let got: Vec<String> = out.stdout
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        prop_assert_eq!(&got[..got.len() - 1], &argv[..]);
    }
}

// ---- IDs, names and messages ------------------------------------------------

proptest! {
    #![proptest_config(cases(512))]

    /// Messages never repeat more than a bounded part of a value.
    #[test]
    fn messages_are_bounded(v in ".{0,600}") {
        // Debug quoting may spell one character as up to ten (`\u{3347a}`).
        let bound = crate::error::SHOWN_CHARS * 12 + 500;
        let messages = [
            crate::Error::invalid("name", v.clone(), "bad").to_string(),
            crate::Error::NotFound(v.clone()).to_string(),
            crate::Error::ImageNotFound(v.clone().into()).to_string(),
            crate::Error::UnknownFormat(v.clone().into()).to_string(),
            TemplateError::NotFound { name: v.clone(), available: vec![v.clone(); 20] }.to_string(),
            TemplateError::MissingVariables { names: vec![v.clone(); 20] }.to_string(),
        ];
        for m in messages {
            prop_assert!(m.chars().count() < bound, "{} chars", m.chars().count());
        }
        let _ = crate::container::is_valid_name(&v);
        let _ = crate::id::is_valid_id(&v);
        let _ = ImageFormat::Unknown;
    }
}
