//! The default seccomp profile of every container pinfold starts: system calls that
//! reach the kernel's most dangerous surfaces fail with `EPERM`; everything else is
//! allowed. It is a deny-list built from the calls Docker's and runc's default
//! profile refuses to a container without extra capabilities (key rings, module
//! loading, mounting, namespaces, tracing, BPF, perf, kexec, swap, clock setting,
//! `io_uring`…), so a program that runs under `docker run` runs here, and the calls
//! an attacker would need to reach the host are closed.
//!
//! One list, two forms: names in the runtime `config.json` for runc, crun and youki
//! (`linux.seccomp`, compiled by the runtime's libseccomp for the native and compat
//! architectures), and a BPF program for bubblewrap (`--add-seccomp-fd`), compiled
//! here with `seccompiler` for the host's architecture. Docker applies its own
//! default profile, which refuses every call of this list too.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator,
    LinuxSyscallBuilder,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;

/// System calls refused with `EPERM` whatever their arguments.
pub const DENIED: &[&str] = &[
    // Kernel key rings: shared with the host, not namespaced.
    "add_key",
    "keyctl",
    "request_key",
    // Kernel modules and kexec: code into the host's kernel.
    "create_module",
    "init_module",
    "finit_module",
    "delete_module",
    "get_kernel_syms",
    "query_module",
    "kexec_load",
    "kexec_file_load",
    // Mounting, old and new API, and changing root.
    "mount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    // Joining other namespaces.
    "setns",
    // Tracing and reading other processes.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    // BPF, perf and userfaultfd: large kernel attack surfaces.
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // File handles bypass the mount namespace (the "shocker" escape).
    "open_by_handle_at",
    "name_to_handle_at",
    // Host-wide state: swap, reboot, clocks, accounting, quotas, the kernel log.
    "swapon",
    "swapoff",
    "reboot",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "acct",
    "quotactl",
    "quotactl_fd",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "nfsservctl",
    // NUMA policy (Docker refuses them without CAP_SYS_NICE, which pinfold never gives).
    "mbind",
    "set_mempolicy",
    "get_mempolicy",
    "move_pages",
    // Obsolete calls with a history of bugs.
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "ioperm",
    "iopl",
];

/// `clone` and `unshare` are refused when they ask for a new user namespace: inside
/// one a process holds every capability again, and the kernel's code behind them is
/// where most container escapes started. Other namespaces need `CAP_SYS_ADMIN`,
/// which no container of pinfold holds.
pub const DENIED_WITH_NEW_USER_NAMESPACE: &[&str] = &["clone", "unshare"];

/// `clone3` passes its flags in memory, where a filter cannot read them: it fails
/// with `ENOSYS`, and the C libraries fall back to `clone` (as under Docker).
pub const ENOSYS: &[&str] = &["clone3"];

/// The system call number of `name` on the architecture pinfold was built for.
fn number(name: &str) -> Option<i64> {
    #[cfg(target_arch = "x86_64")]
    let arch_only = match name {
        // Removed from the kernel long ago and from the libc crate: their numbers
        // from arch/x86/entry/syscalls/syscall_64.tbl (they stay reserved).
        "create_module" => Some(174),
        "get_kernel_syms" => Some(177),
        "query_module" => Some(178),
        "uselib" => Some(libc::SYS_uselib),
        "ustat" => Some(libc::SYS_ustat),
        "sysfs" => Some(libc::SYS_sysfs),
        "_sysctl" => Some(libc::SYS__sysctl),
        "ioperm" => Some(libc::SYS_ioperm),
        "iopl" => Some(libc::SYS_iopl),
        _ => None,
    };
    #[cfg(not(target_arch = "x86_64"))]
    let arch_only: Option<libc::c_long> = None;
    let n = arch_only.or(match name {
        "add_key" => Some(libc::SYS_add_key),
        "keyctl" => Some(libc::SYS_keyctl),
        "request_key" => Some(libc::SYS_request_key),
        "init_module" => Some(libc::SYS_init_module),
        "finit_module" => Some(libc::SYS_finit_module),
        "delete_module" => Some(libc::SYS_delete_module),
        "kexec_load" => Some(libc::SYS_kexec_load),
        "kexec_file_load" => Some(libc::SYS_kexec_file_load),
        "mount" => Some(libc::SYS_mount),
        "umount2" => Some(libc::SYS_umount2),
        "pivot_root" => Some(libc::SYS_pivot_root),
        "fsopen" => Some(libc::SYS_fsopen),
        "fsconfig" => Some(libc::SYS_fsconfig),
        "fsmount" => Some(libc::SYS_fsmount),
        "fspick" => Some(libc::SYS_fspick),
        "open_tree" => Some(libc::SYS_open_tree),
        "move_mount" => Some(libc::SYS_move_mount),
        "mount_setattr" => Some(libc::SYS_mount_setattr),
        "setns" => Some(libc::SYS_setns),
        "ptrace" => Some(libc::SYS_ptrace),
        "process_vm_readv" => Some(libc::SYS_process_vm_readv),
        "process_vm_writev" => Some(libc::SYS_process_vm_writev),
        "kcmp" => Some(libc::SYS_kcmp),
        "bpf" => Some(libc::SYS_bpf),
        "perf_event_open" => Some(libc::SYS_perf_event_open),
        "userfaultfd" => Some(libc::SYS_userfaultfd),
        "io_uring_setup" => Some(libc::SYS_io_uring_setup),
        "io_uring_enter" => Some(libc::SYS_io_uring_enter),
        "io_uring_register" => Some(libc::SYS_io_uring_register),
        "open_by_handle_at" => Some(libc::SYS_open_by_handle_at),
        "name_to_handle_at" => Some(libc::SYS_name_to_handle_at),
        "swapon" => Some(libc::SYS_swapon),
        "swapoff" => Some(libc::SYS_swapoff),
        "reboot" => Some(libc::SYS_reboot),
        "settimeofday" => Some(libc::SYS_settimeofday),
        "clock_settime" => Some(libc::SYS_clock_settime),
        "clock_adjtime" => Some(libc::SYS_clock_adjtime),
        "acct" => Some(libc::SYS_acct),
        "quotactl" => Some(libc::SYS_quotactl),
        "quotactl_fd" => Some(libc::SYS_quotactl_fd),
        "syslog" => Some(libc::SYS_syslog),
        "vhangup" => Some(libc::SYS_vhangup),
        "lookup_dcookie" => Some(libc::SYS_lookup_dcookie),
        "nfsservctl" => Some(libc::SYS_nfsservctl),
        "mbind" => Some(libc::SYS_mbind),
        "set_mempolicy" => Some(libc::SYS_set_mempolicy),
        "get_mempolicy" => Some(libc::SYS_get_mempolicy),
        "move_pages" => Some(libc::SYS_move_pages),
        "clone" => Some(libc::SYS_clone),
        "unshare" => Some(libc::SYS_unshare),
        "clone3" => Some(libc::SYS_clone3),
        _ => None,
    });
    // `SYS_*` are `c_long`: i64 on the 64-bit targets pinfold runs on.
    #[allow(clippy::useless_conversion)]
    n.map(i64::from)
}

/// The profile as the OCI runtime spec writes it (`linux.seccomp` of `config.json`).
/// The architectures are the host's native and compat ones, so that a 32-bit
/// program cannot reach a refused call by its 32-bit number.
pub fn oci_profile() -> Result<LinuxSeccomp, oci_spec::OciSpecError> {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let denied = LinuxSyscallBuilder::default()
        .names(names(DENIED))
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .build()?;
    let new_user = LinuxSeccompArgBuilder::default()
        .index(0usize)
        .value(libc::CLONE_NEWUSER as u64)
        .value_two(libc::CLONE_NEWUSER as u64)
        .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
        .build()?;
    let namespaces = LinuxSyscallBuilder::default()
        .names(names(DENIED_WITH_NEW_USER_NAMESPACE))
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::EPERM as u32)
        .args(vec![new_user])
        .build()?;
    let enosys = LinuxSyscallBuilder::default()
        .names(names(ENOSYS))
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(libc::ENOSYS as u32)
        .build()?;
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(vec![denied, namespaces, enosys])
        .build()
}

fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    }
}

fn target_arch() -> Result<seccompiler::TargetArch, String> {
    if cfg!(target_arch = "x86_64") {
        Ok(seccompiler::TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(seccompiler::TargetArch::aarch64)
    } else {
        Err("pinfold has no seccomp filter for this architecture".into())
    }
}

/// The filters for bubblewrap, each the bytes of a `sock_filter` array as
/// `--add-seccomp-fd` reads them. The kernel runs every filter and the most
/// restrictive answer wins, so each action gets its own filter. A call made through
/// another architecture's entry (32-bit `int 0x80`) kills the process: the filters
/// name native numbers only, and a deny-list must not be bypassed through another
/// table (emulated programs are not affected: qemu-user makes native calls).
pub fn bwrap_programs() -> Result<Vec<Vec<u8>>, String> {
    let arch = target_arch()?;
    let rule_map = |list: &[&str], rules: &dyn Fn() -> Vec<SeccompRule>| -> BTreeMap<i64, Vec<SeccompRule>> {
        list.iter().filter_map(|name| number(name)).map(|n| (n, rules())).collect()
    };
    let compile = |rules, errno: i32| -> Result<BpfProgram, String> {
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(errno as u32), arch)
            .map_err(|e| format!("seccomp filter: {e}"))?;
        BpfProgram::try_from(filter).map_err(|e| format!("seccomp filter: {e}"))
    };
    let new_user = || {
        let flag = libc::CLONE_NEWUSER as u64;
        let condition = SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(flag), flag)
            .expect("argument 0 exists");
        vec![SeccompRule::new(vec![condition]).expect("one condition")]
    };
    let mut denied = rule_map(DENIED, &Vec::new);
    denied.extend(rule_map(DENIED_WITH_NEW_USER_NAMESPACE, &new_user));
    let mut programs = vec![compile(denied, libc::EPERM)?, compile(rule_map(ENOSYS, &Vec::new), libc::ENOSYS)?];
    if cfg!(target_arch = "x86_64") {
        programs.push(x32_guard());
    }
    Ok(programs.iter().map(to_bytes).collect())
}

/// On x86_64 the x32 ABI reaches the same kernel code with the same architecture
/// value and numbers above `__X32_SYSCALL_BIT`, which the numbered filters do not
/// name: every x32 call fails with `EPERM`. Five instructions, written by hand
/// because a numbered rule set cannot express a range.
fn x32_guard() -> BpfProgram {
    use seccompiler::sock_filter;
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    // struct seccomp_data: nr at offset 0, arch at offset 4.
    let ins = |code: u16, jt: u8, jf: u8, k: u32| sock_filter { code, jt, jf, k };
    let (ld_abs, jeq, jge, ret) = (0x20, 0x15, 0x35, 0x06);
    vec![
        ins(ld_abs, 0, 0, 4),
        ins(jeq, 0, 3, AUDIT_ARCH_X86_64),
        ins(ld_abs, 0, 0, 0),
        ins(jge, 0, 1, X32_SYSCALL_BIT),
        ins(ret, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        ins(ret, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
}

fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_known_on_this_architecture_or_absent_from_it() {
        let x86_only = ["create_module", "get_kernel_syms", "query_module", "uselib", "ustat", "sysfs", "_sysctl"];
        for name in DENIED.iter().chain(DENIED_WITH_NEW_USER_NAMESPACE).chain(ENOSYS) {
            let io = ["ioperm", "iopl"];
            let may_lack = !cfg!(target_arch = "x86_64") && (x86_only.contains(name) || io.contains(name));
            assert!(number(name).is_some() || may_lack, "{name}");
        }
    }

    #[test]
    fn the_programs_compile_and_the_profile_serializes() {
        let programs = bwrap_programs().unwrap();
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() % 8 == 0));
        let json = serde_json::to_value(oci_profile().unwrap()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        assert!(json["syscalls"][0]["names"].as_array().unwrap().iter().any(|n| n == "keyctl"));
        assert_eq!(json["syscalls"][1]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
    }
}
