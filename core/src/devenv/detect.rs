//! What `dev serve` and `dev test` run when not told, from the files in the
//! project (SPEC §7, in this priority order).

use std::path::Path;

use super::test_config::{load_test_config, TestConfig};

fn has(dir: &Path, name: &str) -> bool {
    crate::regular_file::is_regular(&dir.join(name))
}

/// Whether `<dir>/<file>` is JSON with `scripts.<script>` (any value). An
/// unreadable or invalid file has no scripts.
fn has_script(dir: &Path, file: &str, script: &str) -> bool {
    // Only a regular file is read (a FIFO named package.json would block).
    crate::regular_file::read(&dir.join(file), 16 << 20)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v.get("scripts").and_then(|s| s.get(script)).is_some())
}

/// The command that serves the project in `dir`:
///
/// 1. `artisan` → `php artisan octane:start --host=0.0.0.0 --port=8000`
/// 2. `package.json` with a `dev` script → `npm run dev -- --host 0.0.0.0`,
///    with a `start` script → `npm start`
/// 3. `composer.json` → `frankenphp php-server -l :8000`
/// 4. `go.mod` and `main.go` → `go run .`
/// 5. `manage.py` → `python manage.py runserver 0.0.0.0:8000`
/// 6. otherwise `python3 -m http.server 8000`
pub fn detect_serve_command(dir: &Path) -> String {
    let cmd = if has(dir, "artisan") {
        "php artisan octane:start --host=0.0.0.0 --port=8000"
    } else if has(dir, "package.json") && has_script(dir, "package.json", "dev") {
        "npm run dev -- --host 0.0.0.0"
    } else if has(dir, "package.json") && has_script(dir, "package.json", "start") {
        "npm start"
    } else if has(dir, "composer.json") {
        "frankenphp php-server -l :8000"
    } else if has(dir, "go.mod") && has(dir, "main.go") {
        "go run ."
    } else if has(dir, "manage.py") {
        "python manage.py runserver 0.0.0.0:8000"
    } else {
        "python3 -m http.server 8000"
    };
    cmd.to_string()
}

/// The command that tests the project in `dir`, or `None`:
///
/// 1. `.core/test.yaml` `command`
/// 2. `composer.json` with a `test` script → `composer test`
/// 3. `package.json` with a `test` script → `npm test`
/// 4. `go.mod` → `go test ./...`
/// 5. `pytest.ini` or `pyproject.toml` → `pytest`
/// 6. `Taskfile.yaml` or `Taskfile.yml` → `task test`
///
/// An invalid `.core/test.yaml` counts as absent here; `dev test` reports
/// it instead.
pub fn detect_test_command(dir: &Path) -> Option<String> {
    detect_test_with(dir, load_test_config(dir).ok().flatten().as_ref())
}

/// [`detect_test_command`] with an already loaded test config.
pub fn detect_test_with(dir: &Path, config: Option<&TestConfig>) -> Option<String> {
    if let Some(c) = config.filter(|c| !c.command.trim().is_empty()) {
        return Some(c.command.clone());
    }
    let cmd = if has(dir, "composer.json") && has_script(dir, "composer.json", "test") {
        "composer test"
    } else if has(dir, "package.json") && has_script(dir, "package.json", "test") {
        "npm test"
    } else if has(dir, "go.mod") {
        "go test ./..."
    } else if has(dir, "pytest.ini") || has(dir, "pyproject.toml") {
        "pytest"
    } else if has(dir, "Taskfile.yaml") || has(dir, "Taskfile.yml") {
        "task test"
    } else {
        return None;
    };
    Some(cmd.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        d
    }

    fn serve(files: &[(&str, &str)]) -> String {
        detect_serve_command(project(files).path())
    }

    fn test(files: &[(&str, &str)]) -> Option<String> {
        detect_test_command(project(files).path())
    }

    const PKG_DEV_START: &str = r#"{"scripts": {"dev": "vite", "start": "node ."}}"#;
    const PKG_START: &str = r#"{"scripts": {"start": "node ."}}"#;
    const PKG_TEST: &str = r#"{"scripts": {"test": "jest"}}"#;
    const COMPOSER_TEST: &str = r#"{"scripts": {"test": ["phpunit"]}}"#;

    #[test]
    fn serve_priority_every_rule() {
        // Each rule beats every rule below it.
        let all = [
            ("artisan", ""),
            ("package.json", PKG_DEV_START),
            ("composer.json", "{}"),
            ("go.mod", "module x"),
            ("main.go", "package main"),
            ("manage.py", ""),
        ];
        assert_eq!(
            serve(&all),
            "php artisan octane:start --host=0.0.0.0 --port=8000"
        );
        assert_eq!(serve(&all[1..]), "npm run dev -- --host 0.0.0.0");
        let mut start_only = all[1..].to_vec();
        start_only[0] = ("package.json", PKG_START);
        assert_eq!(serve(&start_only), "npm start");
        // package.json without dev/start scripts falls through.
        let mut no_scripts = all[1..].to_vec();
        no_scripts[0] = ("package.json", r#"{"scripts": {"test": "x"}}"#);
        assert_eq!(serve(&no_scripts), "frankenphp php-server -l :8000");
        assert_eq!(serve(&all[2..]), "frankenphp php-server -l :8000");
        assert_eq!(serve(&all[3..]), "go run .");
        // go.mod without main.go is not a server.
        assert_eq!(
            serve(&[("go.mod", ""), ("manage.py", "")]),
            "python manage.py runserver 0.0.0.0:8000"
        );
        assert_eq!(serve(&all[5..]), "python manage.py runserver 0.0.0.0:8000");
        assert_eq!(serve(&[]), "python3 -m http.server 8000");
        // Invalid JSON has no scripts.
        assert_eq!(
            serve(&[("package.json", "{not json")]),
            "python3 -m http.server 8000"
        );
    }

    #[test]
    fn test_priority_every_rule() {
        let all = [
            (".core/test.yaml", "command: make check\n"),
            ("composer.json", COMPOSER_TEST),
            ("package.json", PKG_TEST),
            ("go.mod", "module x"),
            ("pytest.ini", ""),
            ("Taskfile.yaml", ""),
        ];
        assert_eq!(test(&all).as_deref(), Some("make check"));
        assert_eq!(test(&all[1..]).as_deref(), Some("composer test"));
        assert_eq!(test(&all[2..]).as_deref(), Some("npm test"));
        assert_eq!(test(&all[3..]).as_deref(), Some("go test ./..."));
        assert_eq!(test(&all[4..]).as_deref(), Some("pytest"));
        assert_eq!(test(&all[5..]).as_deref(), Some("task test"));
        assert_eq!(test(&[("pyproject.toml", "")]).as_deref(), Some("pytest"));
        assert_eq!(test(&[("Taskfile.yml", "")]).as_deref(), Some("task test"));
        assert_eq!(test(&[]), None);
        // Without a test script composer.json and package.json fall through.
        assert_eq!(
            test(&[("composer.json", "{}"), ("package.json", PKG_START)]),
            None
        );
        // A test.yaml without `command` (only named ones) falls through.
        assert_eq!(
            test(&[
                (".core/test.yaml", "commands:\n  - {name: a, run: b}\n"),
                ("go.mod", "")
            ])
            .as_deref(),
            Some("go test ./...")
        );
        // An invalid test.yaml is ignored by detection.
        assert_eq!(
            test(&[(".core/test.yaml", "command: [x\n"), ("go.mod", "")]).as_deref(),
            Some("go test ./...")
        );
    }
}
