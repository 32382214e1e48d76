//! The C ABI from C: `tests/c/client.c` is compiled with the system's C
//! compiler against `include/shmbox.h` and the library cargo built for this
//! test (`libshmbox.so`, and once more against `libshmbox.a`), then run.
//! It covers every function and every status; then it and the `shmbox`
//! command read what the other wrote.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Where cargo puts this build's libraries: this test runs from `deps/`
/// beside them. `cargo test` builds no cdylib or staticlib for a test, so
/// the first call builds them (`cargo build -p shmbox-ffi`, same profile and
/// target directory) if they are missing, as on a fresh machine.
fn build_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            if !dir.join("libshmbox.so").exists() || !dir.join("libshmbox.a").exists() {
                let profile = dir.file_name().unwrap().to_str().unwrap().to_owned();
                let mut cargo = Command::new(env!("CARGO"));
                cargo
                    .args(["build", "--quiet", "-p", "shmbox-ffi", "--lib"])
                    .env("CARGO_TARGET_DIR", dir.parent().unwrap())
                    .current_dir(crate_dir());
                if profile != "debug" {
                    cargo.args(["--profile", &profile]);
                }
                let status = cargo.status().expect("run cargo to build libshmbox");
                assert!(status.success(), "building libshmbox failed");
            }
            dir
        })
        .clone()
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cc(args: &[&str], out: &Path) {
    cc_with(
        &["-I", crate_dir().join("include").to_str().unwrap()],
        args,
        out,
    );
}

/// Compiles the client with `flags` before the source and `args` after it.
fn cc_with(flags: &[&str], args: &[&str], out: &Path) {
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .args(flags)
        .arg(crate_dir().join("tests/c/client.c"))
        .args(args)
        .arg("-o")
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {compiler:?}: {e}"));
    assert!(status.success(), "compiling client.c failed");
}

/// The client, linked against `libshmbox.so`.
fn client() -> &'static Path {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let dir = build_dir();
        assert!(
            dir.join("libshmbox.so").exists(),
            "no libshmbox.so in {}",
            dir.display()
        );
        let out = std::env::temp_dir().join(format!("shmbox-client-{}", std::process::id()));
        let rpath = format!("-Wl,-rpath,{}", dir.display());
        let libdir = format!("-L{}", dir.display());
        cc(&[&libdir, &rpath, "-lshmbox", "-lpthread"], &out);
        out
    })
}

fn run(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap();
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn prefix(tag: &str) -> String {
    format!("test-ffi-{tag}-{}", std::process::id())
}

/// Removes what a test made, whatever happened.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = std::fs::remove_file(format!("/dev/shm/shmbox.{name}"));
        }
    }
}

fn cleanup_for(prefix: &str) -> Cleanup {
    Cleanup(
        ["api", "none", "perm", "corrupt"]
            .iter()
            .map(|s| format!("{prefix}-{s}"))
            .collect(),
    )
}

#[test]
fn every_function_and_status_from_c_through_the_shared_library() {
    let prefix = prefix("so");
    let _cleanup = cleanup_for(&prefix);
    let out = run(client(), &["all", &prefix]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the C checks failed:\n{stdout}");
    assert!(stdout.contains("all passed"), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    // Every status the header defines was seen.
    for seen in [
        "ALREADY_EXISTS",
        "NOT_FOUND",
        "SIZE_MISMATCH",
        "TIMEOUT",
        "OUT_OF_RANGE",
        "INVALID_ARGUMENT",
        "PERMISSION",
        "CORRUPT",
        "INCONSISTENT",
        "NOT_OWNER",
        "OWNER_DIED",
        "OTHER",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok ") && l.contains(seen)),
            "no check of {seen}:\n{stdout}"
        );
    }
}

#[test]
fn the_static_library_links_and_works_too() {
    let dir = build_dir();
    let out = std::env::temp_dir().join(format!("shmbox-client-static-{}", std::process::id()));
    // What a Rust static library needs from the system on Linux.
    cc(
        &[
            dir.join("libshmbox.a").to_str().unwrap(),
            "-lpthread",
            "-ldl",
            "-lm",
            "-lgcc_s",
        ],
        &out,
    );
    let prefix = prefix("static");
    let _cleanup = cleanup_for(&prefix);
    let result = run(&out, &["all", &prefix]);
    let _ = std::fs::remove_file(&out);
    assert!(result.status.success());
}

/// The `shmbox` command, where `cargo test --workspace` builds it beside
/// this test's libraries. `cargo test -p shmbox-ffi` alone does not; then
/// this says so, unless SHMBOX_REQUIRE_CLI (set by .ci/run) demands it.
fn shmbox_command() -> Option<PathBuf> {
    let path = build_dir().join("shmbox");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("SHMBOX_REQUIRE_CLI").is_none(),
        "{} is missing, and SHMBOX_REQUIRE_CLI says it must be there",
        path.display()
    );
    eprintln!(
        "SKIPPED: the shmbox command is not built (cargo build -p shmbox-cli, or cargo test \
         --workspace, builds it)"
    );
    None
}

#[test]
fn c_and_the_command_read_what_the_other_wrote() {
    let Some(shmbox) = shmbox_command() else {
        return;
    };
    let name = prefix("cli");
    let _cleanup = Cleanup(vec![name.clone()]);
    assert!(
        run(&shmbox, &["create", &name, "--size", "64"])
            .status
            .success()
    );

    assert!(
        run(client(), &["write", &name, "from C 你好"])
            .status
            .success()
    );
    let read = run(&shmbox, &["read", &name]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim_end(),
        "from C 你好"
    );

    assert!(
        run(&shmbox, &["write", &name, "from the command"])
            .status
            .success()
    );
    let read = run(client(), &["read", &name]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout).trim_end(),
        "from the command"
    );
    assert!(run(&shmbox, &["rm", &name]).status.success());
}

/// `shmbox.pc.in`, installed into a staging prefix as the README says,
/// gives pkg-config what it takes to build and link a C program.
#[test]
fn the_pkg_config_file_builds_a_program() {
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("SHMBOX_REQUIRE_CLI").is_none(),
            "pkg-config is missing (apt-get install pkgconf), and .ci/run installs it"
        );
        eprintln!("SKIPPED: pkg-config is not installed (apt-get install pkgconf)");
        return;
    }
    let prefix = std::env::temp_dir().join(format!("shmbox-prefix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    for dir in ["lib/pkgconfig", "include"] {
        std::fs::create_dir_all(prefix.join(dir)).unwrap();
    }
    std::fs::copy(
        build_dir().join("libshmbox.so"),
        prefix.join("lib/libshmbox.so"),
    )
    .unwrap();
    std::fs::copy(
        crate_dir().join("include/shmbox.h"),
        prefix.join("include/shmbox.h"),
    )
    .unwrap();
    let template = std::fs::read_to_string(crate_dir().join("shmbox.pc.in")).unwrap();
    let pc = template
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(prefix.join("lib/pkgconfig/shmbox.pc"), pc).unwrap();

    let flags = |what: &str| {
        let out = Command::new("pkg-config")
            .args([what, "shmbox"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .output()
            .unwrap();
        assert!(out.status.success(), "pkg-config {what} shmbox failed");
        String::from_utf8(out.stdout).unwrap()
    };
    let cflags = flags("--cflags");
    let libs = flags("--libs");
    let version = flags("--modversion");
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
    let rpath = format!("-Wl,-rpath,{}", prefix.join("lib").display());
    let mut args: Vec<&str> = libs.split_whitespace().collect();
    args.push(&rpath);
    let exe = prefix.join("client");
    cc_with(&cflags.split_whitespace().collect::<Vec<_>>(), &args, &exe);
    let name = crate::prefix("pc");
    let _cleanup = cleanup_for(&name);
    let result = run(&exe, &["all", &name]);
    let _ = std::fs::remove_dir_all(&prefix);
    assert!(result.status.success());
}
