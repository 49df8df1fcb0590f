//! The sandbox holds on every engine (issue 13, `book/src/run.md`): an image from
//! outside the build file (an `oci:` layout, so untrusted) runs under runc, bubblewrap
//! and Docker, and from inside it the test sees `/proc/sys` read-only, runc's masked
//! paths empty, seccomp in filter mode (`unshare(CLONE_NEWUSER)`, which the
//! host allows, fails with EPERM), no new
//! privileges, and a bounded fork loop (200 forks) stopped by `--pids-limit 64`, with
//! `pinfold run` returning the program's own code (not 125: the sandbox started).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::*;

/// A busybox image written to an OCI layout; `None` outside CI when busybox is missing.
fn busybox_layout() -> Option<(tempfile::TempDir, PathBuf, String)> {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    busybox("amd64", &src.join("busybox-amd64"))?;
    std::fs::write(
        src.join("pinfold.kdl"),
        "pinfold 1\nepoch 1704067200\nplatforms \"linux/amd64\"\nimage probe {\n    from scratch\n    layer l {\n        \
         copy \"busybox-amd64\" to=\"/bin/busybox\" mode=0o755\n        symlink \"/bin/sh\" target=\"busybox\"\n        \
         dir \"/tmp\" mode=0o1777\n    }\n    env PATH=\"/bin\"\n}\n",
    )
    .unwrap();
    let layout = format!("oci:{}", tmp.path().join("probe").display());
    pinfold(&src).args(["build", "probe", "-o", &layout]).run().success();
    Some((tmp, src, layout))
}

fn pinfold(dir: &Path) -> Test {
    Test::new().dir(dir).env("PINFOLD_CACHE_DIR", dir.join("../cache"))
}

/// What the program sees of its sandbox, one line per fact.
const PROBE: &str = r#"
echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo PROC_SYS_WRITABLE
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/scsi /proc/acpi /sys/firmware; do
  if [ -d $p ]; then echo "masked-dir $p $(busybox ls -A $p | busybox wc -l)";
  elif [ -e $p ]; then echo "masked-file $p $(busybox head -c 64 $p 2>/dev/null | busybox wc -c)"; fi
done
busybox grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status
busybox unshare -U true 2>/dev/null && echo USERNS_CREATED
busybox unshare -U true 2>&1 | busybox grep -q 'Operation not permitted' && echo USERNS_EPERM
echo done
"#;

/// 200 background processes, counted; the pids limit stops the loop long before.
const FORK_LOOP: &str = "i=0; while [ $i -lt 200 ]; do busybox sleep 30 & i=$((i+1)); done; echo \"forked $i\"";

fn engines() -> Vec<&'static str> {
    let mut engines = Vec::new();
    if require_tool("runc", &["--version"]) {
        engines.push("runc");
    }
    if require_tool("bwrap", &["--version"]) {
        engines.push("bwrap");
    }
    if require_tool("docker", &["info"]) {
        engines.push("docker");
    }
    engines
}

#[test]
fn every_engine_gives_an_untrusted_image_the_whole_sandbox() {
    let Some((_tmp, src, layout)) = busybox_layout() else { return };
    for engine in engines() {
        let ran = pinfold(&src).args(["run", "--engine", engine, &layout, "--", "/bin/sh", "-c", PROBE]).run();
        let out = ran.stdout();
        eprintln!("--- {engine}\n{out}{}", ran.stderr());
        let ran = ran.success();
        assert!(out.ends_with("done\n"), "{engine}: {out}");
        assert!(!out.contains("PROC_SYS_WRITABLE"), "{engine}: /proc/sys is writable");
        assert!(out.contains("Seccomp:\t2\n"), "{engine}: no seccomp filter: {out}");
        assert!(out.contains("NoNewPrivs:\t1\n"), "{engine}: {out}");
        assert!(!out.contains("USERNS_CREATED"), "{engine}: a user namespace was created");
        // The host allows user namespaces (CI runs as root): only the filter refuses.
        assert!(out.contains("USERNS_EPERM"), "{engine}: unshare(CLONE_NEWUSER) not refused with EPERM: {out}");
        // Every masked path this host has is empty in the container.
        let masked: Vec<&str> = out.lines().filter(|l| l.starts_with("masked-")).collect();
        assert!(masked.iter().any(|l| l.contains("/proc/kcore") || l.contains("/proc/keys")), "{engine}: {out}");
        for line in &masked {
            assert!(line.ends_with(" 0"), "{engine}: not masked: {line}");
        }
        drop(ran);
    }
}

#[test]
fn a_fork_loop_is_stopped_by_the_pids_limit_on_every_engine() {
    let Some((_tmp, src, layout)) = busybox_layout() else { return };
    for engine in engines() {
        let started = Instant::now();
        let ran = pinfold(&src)
            .args(["run", "--engine", engine, "--pids-limit", "64", &layout, "--", "/bin/sh", "-c", FORK_LOOP])
            .run();
        let elapsed = started.elapsed();
        eprintln!("--- {engine} ({elapsed:?})\n{}{}", ran.stdout(), ran.stderr());
        assert!(!ran.stdout().contains("forked 200"), "{engine}: 200 processes were started under a limit of 64");
        let code = ran.output.status.code().unwrap_or(-1);
        // The program's own failure (the shell cannot fork), not pinfold's 125-127.
        assert!(code > 0 && code < 125, "{engine}: exit code {code}");
        assert!(ran.stderr().contains("fork"), "{engine}: {}", ran.stderr());
        assert!(elapsed < Duration::from_secs(60), "{engine}: took {elapsed:?}");
        // Without a limit of its own, the same loop completes (the limit did it).
        let ran = pinfold(&src)
            .args(["run", "--engine", engine, "--pids-limit", "400", &layout, "--", "/bin/sh", "-c", FORK_LOOP])
            .run()
            .success();
        assert!(ran.stdout().contains("forked 200"), "{engine}: {}", ran.stdout());
    }
}
