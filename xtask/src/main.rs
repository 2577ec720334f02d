//! Developer tasks. `gen OUTDIR [--suffix SUFFIX]` writes, for each program
//! of the toolkit (`s6_ipcserver::programs::ALL`), the man page and the
//! bash, zsh and fish completions, all generated from the clap definitions
//! in `s6_ipcserver::programs`, so they cannot drift from `--help`.
//!
//! The packages install every program under its C name plus `-rs`
//! (`s6-ipcserver-rs`, `s6-ipcserver-access-rs`...), so that they sit beside
//! skarnet's s6, which owns `/usr/bin/s6-ipcserver` and the rest; `doc/`
//! holds the pages for those names, and a test below fails when `doc/` is
//! stale.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueHint;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use s6_ipcserver::programs::{Program, ALL};

/// The C names of the programs (and of the cargo binaries).
const PROGRAM: &str = "s6-ipcserver";
const SERVING: &str = "s6-ipcserverd";
const SOCKETBINDER: &str = "s6-ipcserver-socketbinder";
const ACCESS: &str = "s6-ipcserver-access";
const CONNLIMIT: &str = "s6-connlimit";
const IPCCLIENT: &str = "s6-ipcclient";
const CDB_FROM_FS: &str = "s6-accessrules-cdb-from-fs";
const FS_FROM_CDB: &str = "s6-accessrules-fs-from-cdb";

/// The program of the toolkit called `name` (its C name).
pub fn program(name: &str) -> &'static Program {
    ALL.iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no program {name} in s6_ipcserver::programs::ALL"))
}

const USAGE: &str = "usage: cargo run -p xtask -- gen OUTDIR [--suffix SUFFIX]\n\
    Writes, for every program of the toolkit, OUTDIR/NAME.1 and\n\
    OUTDIR/completions/{NAME.bash,_NAME,NAME.fish}, NAME being the program's\n\
    name plus SUFFIX; the packages use the suffix -rs (see ci/gen-docs).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (outdir, suffix) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen", dir] => (dir, ""),
        ["gen", dir, "--suffix", suffix] | ["gen", "--suffix", suffix, dir] => (dir, suffix),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(100);
        }
    };
    match write_all(Path::new(outdir), suffix) {
        Ok(written) => {
            for p in written {
                println!("{}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: fatal: writing to {outdir}: {e}");
            ExitCode::from(111)
        }
    }
}

fn write_all(outdir: &Path, suffix: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, bytes) in generate_all(suffix) {
        let path = outdir.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, bytes)?;
        written.push(path);
    }
    Ok(written)
}

/// The command as documented under `name`: the clap definition, renamed,
/// with value hints so the shells complete a file for PATH and a command
/// line for PROG.
fn documented_command(program: &Program, name: &str) -> clap::Command {
    let cmd = (program.command)()
        .name(name.to_owned())
        .bin_name(name.to_owned())
        .override_usage(usage(program, name));
    // PATH first: mut_arg puts the argument last, and PROG must stay last.
    let cmd = if program.name == PROGRAM {
        cmd.mut_arg("path", |a| a.value_hint(ValueHint::FilePath))
    } else {
        cmd
    };
    if has_prog(&cmd) {
        cmd.mut_arg("prog", |a| a.value_hint(ValueHint::CommandWithArguments))
    } else {
        cmd
    }
}

/// Whether the program runs another (its last operand is `prog...`).
fn has_prog(cmd: &clap::Command) -> bool {
    cmd.get_arguments().any(|a| a.get_id() == "prog")
}

/// The usage line of the clap definition (what `--help` prints), renamed.
fn usage(program: &Program, name: &str) -> String {
    program.usage.replacen(program.name, name, 1)
}

/// Every generated file of every program, names ending in `suffix`.
pub fn generate_all(suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
    ALL.iter()
        .flat_map(|p| generate(p, &format!("{}{suffix}", p.name)))
        .collect()
}

/// Every generated file of `program` documented as `name`, as (path
/// relative to the output directory, bytes).
pub fn generate(program: &Program, name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![(PathBuf::from(format!("{name}.1")), man_page(program, name))];
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(
            shell,
            &mut documented_command(program, name),
            name,
            &mut buf,
        );
        if shell == Shell::Bash {
            if let Some(wrapper) = bash_getopt(program, name) {
                buf.extend_from_slice(wrapper.as_bytes());
            }
        }
        files.push((Path::new("completions").join(file), buf));
    }
    files
}

/// clap's bash completion knows nothing of getopt's end of options: after
/// `path` it offered options where a program belongs, and never a command.
/// This wrapper walks the words as getopt does; once the operands before
/// `prog` are behind the cursor it completes `prog` as a command name and
/// its arguments as that command's (bash-completion's `_command_offset`,
/// else files), and leaves everything else to clap's function. Programs
/// that run no prog (the rules converters) need none.
fn bash_getopt(program: &Program, name: &str) -> Option<String> {
    let cmd = documented_command(program, name);
    if !has_prog(&cmd) {
        return None;
    }
    let with_value: String = cmd
        .get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::Append))
        .filter_map(|a| a.get_short())
        .collect();
    // Operands before prog: path for s6-ipcserver, none for s6-ipcserverd.
    let before_prog = cmd
        .get_positionals()
        .filter(|a| a.get_id() != "prog")
        .count();
    let clap_fn = format!("_{}", name.replace('-', "__"));
    let wrapper = format!("{clap_fn}_getopt");
    Some(format!(
        r#"
# Added by xtask: getopt's end of options, then prog as a command.
{wrapper}() {{
    local i=1 operands=0 opts_done=0 w cur="${{COMP_WORDS[COMP_CWORD]}}"
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w="${{COMP_WORDS[i]}}"
        if [ "$opts_done" -eq 0 ] && [ "$w" = "--" ]; then
            opts_done=1
        elif [ "$opts_done" -eq 0 ] && [ "${{#w}}" -gt 1 ] && [ "${{w#-}}" != "$w" ]; then
            # A cluster whose last option takes the next word as its value.
            case "${{w#-}}" in
            *[{with_value}]*)
                local rest="${{w#-}}"
                rest="${{rest#*[{with_value}]}}"
                [ -z "$rest" ] && i=$((i + 1))
                ;;
            esac
        else
            opts_done=1
            operands=$((operands + 1))
            if [ "$operands" -gt {before_prog} ]; then
                # prog is word i: complete it and its arguments as a command.
                if declare -F _command_offset >/dev/null; then
                    _command_offset "$i"
                else
                    COMPREPLY=($(compgen -f -- "$cur"))
                fi
                return 0
            fi
        fi
        i=$((i + 1))
    done
    # The cursor is on prog itself (not on an option's value, not on an
    # option): command names.
    if [ "$i" -eq "$COMP_CWORD" ] && [ "$operands" -eq {before_prog} ] &&
        {{ [ "$opts_done" -eq 1 ] || [ "${{cur#-}}" = "$cur" ]; }}; then
        COMPREPLY=($(compgen -c -- "$cur"))
        return 0
    fi
    {clap_fn} "$@"
}}
complete -F {wrapper} -o bashdefault -o default {name}
"#
    ))
}

/// Writes one section of the man page.
type Section<'a> = dyn Fn(&mut dyn Write) -> std::io::Result<()> + 'a;

/// The man page: clap_mangen renders NAME, DESCRIPTION and OPTIONS from the
/// clap definition. SYNOPSIS is the definition's own usage line, because
/// clap_mangen ignores `override_usage` and cannot show `-q | -Q | -v` or
/// option values. The sections clap has no field for are written here,
/// saying what the README's Reference says.
fn man_page(program: &Program, name: &str) -> Vec<u8> {
    // The other programs' pages are named as this one is: C name + suffix.
    let suffix = name.strip_prefix(program.name).unwrap_or("");
    let (description, extra) = extra_sections(program, name, suffix);
    let man = clap_mangen::Man::new(documented_command(program, name))
        .title(name.to_uppercase())
        .manual("User Commands");
    let synopsis = |w: &mut dyn Write| {
        let usage = usage(program, name);
        let (prog, rest) = usage.split_at(name.len());
        let mut r = Roff::new();
        r.control("SH", ["SYNOPSIS"])
            .text([bold(prog), roman(rest)]);
        r.to_writer(w)
    };
    let parts: [&Section; 6] = [
        &|w| man.render_title(w),
        &|w| man.render_name_section(w),
        &synopsis,
        &|w| man.render_description_section(w),
        &|w| description.to_writer(w),
        &|w| man.render_options_section(w),
    ];
    let preamble = Roff::new().render();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut buf = Vec::new();
        part(&mut buf).expect("writing to a Vec cannot fail");
        // Each render call repeats roff's apostrophe preamble; keep the first.
        let body = if i == 0 {
            &buf[..]
        } else {
            buf.strip_prefix(preamble.as_bytes()).unwrap_or(&buf[..])
        };
        out.extend_from_slice(body);
    }
    let extra = extra.render();
    out.extend_from_slice(extra.strip_prefix(&preamble).unwrap_or(&extra).as_bytes());
    out
}

/// A `.TP` item: a bold tag, then its paragraph.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn para(roff: &mut Roff, text: impl Into<Vec<Inline>>) {
    roff.control("PP", []);
    roff.text(text);
}

/// A literal block (one shell session), indented.
fn example(roff: &mut Roff, lines: &[&str]) {
    roff.control("RS", ["4"]);
    roff.control("nf", []);
    for l in lines {
        roff.text([roman(*l)]);
    }
    roff.control("fi", []);
    roff.control("RE", []);
}

/// ENVIRONMENT: what every child gets, the same from both programs.
fn environment(r: &mut Roff) {
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "Every instance of prog runs with the server's environment plus these variables:",
    )]);
    item(r, "PROTO", "Always IPC.");
    item(
        r,
        "IPCREMOTEEUID",
        "The effective uid the client had when it connected, as the kernel recorded it. \
         Removed from the environment with -P.",
    );
    item(
        r,
        "IPCREMOTEEGID",
        "The effective gid the client had when it connected. Removed from the environment with -P.",
    );
    item(
        r,
        "IPCREMOTEPID",
        "The pid of the process that connected, where the system records it (Linux, Android, \
         FreeBSD 13 and later, NetBSD, OpenBSD, macOS, illumos, Solaris). Removed from the \
         environment, even if inherited, where it is not known, and with -P.",
    );
    item(
        r,
        "IPCREMOTEGIDLIST",
        "The client's supplementary groups when it connected, decimal gids separated by commas \
         (empty if it has none), as the kernel recorded them, where the system records them all \
         (Linux, FreeBSD, DragonFly, macOS, illumos, Solaris; on FreeBSD, DragonFly and macOS \
         only up to 14 groups). \
         Removed from the environment, even if inherited, where they are not known, and with -P. \
         s6-ipcserver-access -g looks rules up by them.",
    );
    item(
        r,
        "IPCCONNNUM",
        "How many connections this client's uid has open, this one included. Set but empty with -P.",
    );
    item(
        r,
        "IPCREMOTEPATH",
        "The path the client's own socket is bound to, or empty (the usual case). \
         It may contain any character.",
    );
}

/// SIGNALS, and how children are started: the same in both programs.
fn signals(r: &mut Roff) {
    r.control("SH", ["SIGNALS"]);
    item(
        r,
        "SIGTERM",
        "Stop accepting and exit 0. Running children are left alone.",
    );
    item(
        r,
        "SIGHUP",
        "Send SIGTERM then SIGCONT to every child, and keep serving.",
    );
    item(
        r,
        "SIGQUIT",
        "Send SIGTERM then SIGCONT to every child, then exit 0.",
    );
    item(r, "SIGABRT", "Send SIGKILL to every child, then exit 0.");
    para(
        r,
        [roman(
            "They act even when the server's parent left them ignored or blocked; children get none of them ignored or blocked, \
             and none of the signals the C library keeps for itself (32 up to SIGRTMIN on Linux) ignored.",
        )],
    );
    para(
        r,
        [roman(
            "The server has exactly one child per live connection, at every verbosity. It starts \
             each with posix_spawn from a few spawner threads (two per CPU, 2 to 16, at most \
             maxconn), which count toward RLIMIT_NPROC and a service's task limit like the \
             children do. A signal that arrives while spawns are in flight reaches their children \
             once their pids are known; SIGQUIT and SIGABRT wait up to 1 second for them. A child \
             is reaped only once its spawn is reported (or when none is in flight), so the child of \
             a failed exec, which the C library reaps itself, is never taken from it. One \
             connection is handled per round of the loop, so a flood of denied clients never \
             delays signals and exits.",
        )],
    );
    para(
        r,
        [roman(
            "Each child has the connection on fds 0 and 1, the server's stderr on fd 2 and the \
             descriptors the server's own parent passed on; it closes every descriptor the server \
             opened before its exec (and before its PATH search), where the C library can \
             (glibc 2.34 and later, FreeBSD 13.1 and later, illumos, Solaris; on macOS the spawn \
             is one system call). A child stopped before its exec holds neither the listening \
             socket nor another client's connection.",
        )],
    );
}

/// The exit codes both programs share the meaning of.
const EXIT_0: &str = "After SIGTERM, SIGQUIT or SIGABRT; and after --help or --version.";
const EXIT_101: &str = "An internal inconsistency (a bug: please report it).";

/// The parts of `program`'s page that clap has no field for: paragraphs to
/// add to DESCRIPTION (none for the servers), and the sections after
/// OPTIONS.
fn extra_sections(program: &Program, name: &str, suffix: &str) -> (Roff, Roff) {
    let (description, rest) = match program.name {
        PROGRAM => (Roff::new(), server_sections(name, suffix)),
        SERVING => (Roff::new(), serving_sections(name, suffix)),
        SOCKETBINDER => socketbinder_sections(name, suffix),
        ACCESS => access_sections(name, suffix),
        CONNLIMIT => connlimit_sections(name, suffix),
        IPCCLIENT => ipcclient_sections(name, suffix),
        CDB_FROM_FS => cdb_from_fs_sections(name, suffix),
        FS_FROM_CDB => fs_from_cdb_sections(name, suffix),
        other => panic!("xtask has no man page sections for {other}: add them"),
    };
    (description, rest)
}

/// The sections of s6-ipcserver's page that clap has no field for.
fn server_sections(name: &str, suffix: &str) -> Roff {
    let mut r = Roff::new();

    environment(&mut r);
    para(
        &mut r,
        [roman(
            "With -U the server reads, before it creates anything, the variables written by s6-envuidgid(1):",
        )],
    );
    item(
        &mut r,
        "UID",
        "The uid to run as after binding. Must be set, in decimal.",
    );
    item(
        &mut r,
        "GID",
        "The gid to run as after binding. Must be set, in decimal.",
    );
    item(
        &mut r,
        "GIDLIST",
        "The supplementary groups, a comma-separated list of decimal gids. Must be set; may be empty.",
    );
    para(
        &mut r,
        [roman(
            "A missing or invalid variable is named in the error message, and the server exits 100. \
             UID, GID and GIDLIST never reach a child. Options apply in the order given: -u, -g or \
             -G after -U overrides its part, and -U after them overrides them.",
        )],
    );

    signals(&mut r);
    para(
        &mut r,
        [roman(
            "The socket file is left in place on exit; the next start with -d replaces it.",
        )],
    );

    r.control("SH", ["EXIT STATUS"]);
    item(&mut r, "0", EXIT_0);
    item(
        &mut r,
        "100",
        "Wrong usage, or an invalid UID, GID or GIDLIST with -U. Nothing was created on disk.",
    );
    item(&mut r, "101", EXIT_101);
    item(
        &mut r,
        "111",
        "A system call failed: socket, bind (or a non-socket at path), listen, dropping privileges, \
         the event loop. The message says which step failed.",
    );

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman(
            "Serve one line naming the client's uid; -1 prints the path once connections are accepted:",
        )],
    );
    example(
        &mut r,
        &[
            &format!("$ {name} -1 -v /tmp/whoami.sock sh -c 'echo \"you are uid $IPCREMOTEEUID\"'"),
            "/tmp/whoami.sock",
            "(then, from another terminal)",
            "$ socat - UNIX-CONNECT:/tmp/whoami.sock",
            "you are uid 1000",
        ],
    );
    para(
        &mut r,
        [roman(
            "Bind a socket in /run as root, then serve as the unprivileged account nobody, \
             at most 10 clients at once and 2 per uid. The socket is bound before the drop, so it \
             belongs to root and root's group: with mode 0660 only they may connect (0666 lets \
             everyone, and the program can tell them apart by IPCREMOTEEUID):",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "# s6-envuidgid nobody {name} -U -a 0660 -c 10 -C 2 /run/demo.sock /usr/local/bin/demo"
        )],
    );
    para(
        &mut r,
        [roman(
            "Under s6-supervise(8), with a notification-fd file containing 3, the run script hands \
             descriptor 3 to -1 as stdout, so the service is up exactly when it accepts connections:",
        )],
    );
    example(
        &mut r,
        &[
            "#!/bin/sh",
            "exec 2>&1",
            &format!("exec {name} -1 /run/demo.sock ./whoami 1>&3 3>&-"),
        ],
    );
    para(
        &mut r,
        [roman(
            "The examples directory of the source tree has the same service for s6, runit, systemd, \
             FreeBSD rc.d and illumos SMF.",
        )],
    );

    r.control("SH", ["DIFFERENCES FROM THE C S6-IPCSERVER"]);
    let mut diff = |tag: &str, text: &str| item(&mut r, tag, text);
    if name != PROGRAM {
        diff(
            "Name",
            &format!(
                "Packages install the program as {name}, so that it coexists with skarnet's s6, \
                 which provides {PROGRAM}. It still prefixes its messages with \"{PROGRAM}:\"."
            ),
        );
    }
    diff(
        "One process",
        "Binding, dropping privileges and serving happen in one program; \
         s6-ipcserver-socketbinder, s6-applyuidgid and s6-ipcserverd are not needed.",
    );
    diff(
        "-d",
        "Removes an existing path only if it is a socket; a regular file, a directory or a link \
         to one makes the server refuse to start (exit 111), so a typo never destroys a file.",
    );
    diff(
        "-a perms",
        "Sets the socket file's mode, whatever the umask.",
    );
    diff(
        "PATH.lock",
        "With -d, the fcntl write lock on PATH.lock that the C s6-ipcserver-socketbinder takes \
         while it binds is held for as long as the server serves: a second server started on a \
         live path exits 111 (Device or resource busy) instead of taking the first one's clients.",
    );
    diff(
        "Privileges",
        "With -g or -u and no -G, the supplementary groups become just the new primary gid, so no \
         group of root's survives. After a uid drop the server checks that setuid(0) fails, and \
         dies if it does not. A drop that changes nothing needs no privilege.",
    );
    diff(
        "-P",
        "IPCREMOTEEUID and IPCREMOTEEGID are removed from the child's environment, and IPCCONNNUM \
         is set but empty.",
    );
    diff(
        "IPCREMOTEPID, IPCREMOTEGIDLIST",
        "The client's pid and supplementary groups, where the system records them; the C program \
         sets neither.",
    );
    diff(
        "Processes",
        "Exactly one child per live connection, at every verbosity. Children are started with \
         posix_spawn from a few spawner threads (two per CPU, 2 to 16, at most maxconn), so the \
         server goes on accepting and handling signals while a child execs; a connection counts \
         toward -c and -C from its accept. With every spawner busy (a child stopped before its \
         exec, say), new clients wait in the backlog and SIGTERM still works. SIGQUIT and SIGABRT \
         wait up to 1 second for spawns in flight, so that their children are signalled too.",
    );
    diff(
        "Spawn failures",
        "If prog cannot be started, the server itself logs a warning, closes that connection, \
         and goes on serving.",
    );
    diff(
        "Option parsing",
        "POSIX getopt on every platform: parsing stops at path, so prog's own options reach prog. \
         --help and --version are accepted before path.",
    );

    see_also(&mut r, suffix, &[SERVING, ACCESS, CONNLIMIT, IPCCLIENT]);
    r
}

/// SEE ALSO: the pages of the servers' related programs of this package
/// under their installed names, unix(7), and where the C s6 programs both
/// work with are documented (Debian's s6 installs no man pages for them).
fn see_also(r: &mut Roff, suffix: &str, related: &[&str]) {
    r.control("SH", ["SEE ALSO"]);
    r.text(pages(suffix, related, true));
    para(
        r,
        [roman(
            "The C s6 programs these work with (s6-ipcclient, s6-envuidgid, s6-applyuidgid, \
             s6-ipcserver-socketbinder, s6-supervise, s6-fdholder-daemon) are documented at \
             https://skarnet.org/software/s6/; systemd's socket activation in sd_listen_fds(3), \
             where systemd is installed.",
        )],
    );
}

/// The sections of s6-ipcserverd's page that clap has no field for.
fn serving_sections(name: &str, suffix: &str) -> Roff {
    let mut r = Roff::new();

    environment(&mut r);
    para(
        &mut r,
        [roman(
            "systemd's socket activation variables are read, then removed: they never reach a child.",
        )],
    );
    item(
        &mut r,
        "LISTEN_PID, LISTEN_FDS",
        "When LISTEN_PID is the server's own pid and LISTEN_FDS is 1, the server serves fd 3 \
         (sd_listen_fds(3)) instead of its stdin; unset or 0, it serves stdin. LISTEN_FDS above 1 \
         is a fatal error: this program serves one socket.",
    );
    item(
        &mut r,
        "LISTEN_FDNAMES",
        "Removed from the children's environment.",
    );

    signals(&mut r);

    r.control("SH", ["EXIT STATUS"]);
    item(&mut r, "0", EXIT_0);
    item(
        &mut r,
        "100",
        "Wrong usage; or stdin (fd 3 under socket activation) is not a listening Unix stream \
         socket (the message says what it is instead); or LISTEN_FDS is above 1.",
    );
    item(&mut r, "101", EXIT_101);
    item(
        &mut r,
        "111",
        "A system call failed: trapping signals, starting the spawner threads, the event loop. \
         The message says which step failed.",
    );

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman(
            "Bind with the C s6-ipcserver-socketbinder, drop privileges with s6-applyuidgid, serve:",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "# s6-ipcserver-socketbinder -a 0660 /run/demo.sock s6-envuidgid nobody \\\n    s6-applyuidgid -U {name} -1 -c 10 -C 2 /usr/local/bin/demo"
        )],
    );
    para(
        &mut r,
        [roman(
            "Serve a socket held by s6-fdholder-daemon(8), so that the server can be restarted or \
             upgraded without a client being refused: clients wait in the held socket's backlog \
             meanwhile.",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "# s6-fdholder-retrieve /run/fdholder/s unix:/run/demo.sock {name} -1 /usr/local/bin/demo"
        )],
    );
    para(
        &mut r,
        [roman(
            "Under systemd, a .socket unit with ListenStream=/run/demo.sock and Accept=no, and its \
             .service running:",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "ExecStart=/usr/bin/{name} -v 2 /usr/local/bin/demo"
        )],
    );
    para(
        &mut r,
        [roman(
            "The examples directory of the source tree has both, ready to install.",
        )],
    );

    r.control("SH", ["DIFFERENCES FROM THE C S6-IPCSERVERD"]);
    let mut diff = |tag: &str, text: &str| item(&mut r, tag, text);
    if name != SERVING {
        diff(
            "Name",
            &format!(
                "Packages install the program as {name}, so that it coexists with skarnet's s6, \
                 which provides s6-ipcserverd. It still prefixes its messages with \"s6-ipcserverd:\"."
            ),
        );
    }
    diff(
        "Socket activation",
        "systemd's LISTEN_PID and LISTEN_FDS are understood (the C program reads stdin only).",
    );
    diff(
        "IPCREMOTEPID",
        "The client's pid, where the system records it; the C program sets no such variable.",
    );
    diff(
        "IPCREMOTEGIDLIST",
        "The client's supplementary groups, where the system records them; the C program sets \
         no such variable.",
    );
    diff(
        "Stdin",
        "Anything but a listening Unix stream socket on stdin is refused with a message saying \
         what it is, exit 100. The socket is moved to a close-on-exec descriptor and stdin becomes \
         /dev/null, so no child and no later exec inherits it. Its file status flags are left as \
         found: other holders of the socket share them.",
    );
    diff(
        "Processes",
        "Exactly one child per live connection; children are started from spawner threads, so \
         the server goes on accepting and handling signals while a child execs.",
    );
    diff(
        "Spawn failures",
        "If prog cannot be started, the server itself logs a warning, closes that connection, \
         and goes on serving.",
    );

    see_also(&mut r, suffix, &[PROGRAM, SOCKETBINDER, ACCESS, IPCCLIENT]);
    r
}

/// `a(1), b(1), ...` for the programs of this package under their installed
/// names, then `unix(7).` if `unix`, else a full stop.
fn pages(suffix: &str, programs: &[&str], unix: bool) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, p) in programs.iter().enumerate() {
        out.push(italic(format!("{p}{suffix}")));
        let last = i + 1 == programs.len() && !unix;
        out.push(roman(if last { "(1)." } else { "(1), " }));
    }
    if unix {
        out.push(italic("unix"));
        out.push(roman("(7)."));
    }
    out
}

/// SEE ALSO of the programs other than the servers: the related pages of
/// this package, then where the C programs are documented.
fn see_also_toolkit(r: &mut Roff, suffix: &str, related: &[&str], unix: bool, more: &str) {
    r.control("SH", ["SEE ALSO"]);
    r.text(pages(suffix, related, unix));
    let sep = if more.is_empty() { "" } else { " " };
    para(
        r,
        [roman(format!(
            "The C originals of this package's programs are documented at \
             https://skarnet.org/software/s6/.{sep}{more}"
        ))],
    );
}

/// The heading of DIFFERENCES FROM THE C program `base`.
fn differences(r: &mut Roff, base: &str) {
    let title = format!("DIFFERENCES FROM THE C {}", base.to_uppercase());
    r.control("SH", [title.as_str()]);
}

/// The "Name" item of DIFFERENCES, when the page is for a renamed program.
fn name_difference(r: &mut Roff, name: &str, base: &str) {
    if name != base {
        item(
            r,
            "Name",
            &format!(
                "Packages install the program as {name}, so that it coexists with skarnet's s6, \
                 which provides {base}. It still prefixes its messages with \"{base}:\"."
            ),
        );
    }
}

/// EXIT STATUS items of a program that ends by executing prog.
fn exit_exec(r: &mut Roff, what: &str) {
    item(
        r,
        "126",
        &format!("{what} was found but could not be executed (the message says why)."),
    );
    item(r, "127", &format!("{what} was not found."));
}

/// The "Option parsing" item of DIFFERENCES for the programs the C s6
/// reads with getopt too.
const GETOPT_DIFFERENCE: &str =
    "--help and --version are accepted before the first operand; the C program knows neither.";

/// The "Exec" item of DIFFERENCES for the programs that end by executing
/// PROG.
const EXEC_DIFFERENCE: &str = "PROG starts with an empty signal mask and SIGPIPE at its default \
    (as Rust's Command execs); the C program passes on what it was given.";

/// s6-ipcserver-socketbinder's page beyond clap's.
fn socketbinder_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut d = Roff::new();
    para(
        &mut d,
        [roman(
            "The socket is bound with exactly the mode -a gives, whatever the umask, and is on \
             PROG's stdin (fd 0), inherited; no other descriptor the binder opens survives the \
             exec. With -b 0 it does not listen, as a datagram socket (-m) must not.",
        )],
    );
    para(
        &mut d,
        [roman(
            "With -d (the default), the binder takes an fcntl write lock on PATH.lock (created with \
             mode 0600 if need be, never removed), removes an existing socket at PATH, binds, and \
             releases the lock when it executes PROG: two binders started at once never remove \
             each other's socket (the second exits 111, Device or resource busy). Anything at PATH \
             that is not a socket (a regular file, a directory, a link) is never removed: the \
             binder exits 111 and says what is there. With -D nothing is removed and no lock is \
             taken: binding fails (Address already in use) if PATH exists.",
        )],
    );
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "None is read or set: PROG runs with the binder's environment, unchanged.",
    )]);

    r.control("SH", ["EXIT STATUS"]);
    item(
        &mut r,
        "0",
        "After --help or --version (otherwise the binder becomes PROG).",
    );
    item(&mut r, "100", "Wrong usage.");
    item(
        &mut r,
        "111",
        "The socket could not be made: socket, bind, listen, the lock on PATH.lock, something \
         not a socket at PATH with -d, a path longer than a socket address holds. The message \
         says which step failed.",
    );
    exit_exec(&mut r, "PROG");

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman(
            "The C s6-ipcserver's chain, made of this package's programs: bind as root, drop \
             privileges with s6-applyuidgid, serve:",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "# {name} -a 0660 /run/demo.sock s6-envuidgid nobody \\\n    s6-applyuidgid -U {SERVING}{suffix} -1 -c 10 /usr/local/bin/demo"
        )],
    );
    para(
        &mut r,
        [roman(
            "Hand a bound socket to s6-fdholder-store(1), so that the servers that later take it \
             from the fd holder can be restarted without a client being refused:",
        )],
    );
    example(
        &mut r,
        &[&format!(
            "# {name} -a 0666 /run/demo.sock \\\n    s6-fdholder-store /run/fdholder/s unix:/run/demo.sock"
        )],
    );

    differences(&mut r, SOCKETBINDER);
    name_difference(&mut r, name, SOCKETBINDER);
    item(
        &mut r,
        "-d",
        "Removes an existing path only if it is a socket; a regular file, a directory or a link \
         makes the binder exit 111, so a typo never destroys a file. The C program removes \
         whatever is there.",
    );
    item(
        &mut r,
        "Long paths",
        "A path longer than a Unix socket address holds is refused with a message giving both \
         lengths (the C program says \"Protocol error\").",
    );
    item(&mut r, "Option parsing", GETOPT_DIFFERENCE);
    item(&mut r, "Exec", EXEC_DIFFERENCE);

    see_also_toolkit(
        &mut r,
        suffix,
        &[SERVING, PROGRAM, IPCCLIENT],
        true,
        "So are the programs the examples use with the binder: s6-envuidgid, s6-applyuidgid, \
         s6-fdholder-store.",
    );
    (d, r)
}

/// s6-ipcserver-access's page beyond clap's.
fn access_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut d = Roff::new();
    para(&mut d, [roman("The keys, in the order they are tried:")]);
    item(
        &mut d,
        "uid/self",
        "Only if the client's euid is this program's own euid.",
    );
    item(
        &mut d,
        "uid/EUID",
        "The client's euid, in decimal: uid/1000.",
    );
    item(
        &mut d,
        "gid/self",
        "Only if the client's egid is this program's own egid.",
    );
    item(&mut d, "gid/EGID", "The client's egid, in decimal.");
    item(
        &mut d,
        "gid/G",
        "Only with -g: one key for every gid G of ${PROTO}REMOTEGIDLIST, the client's \
         supplementary groups, in the list's order.",
    );
    item(&mut d, "uid/default", "Every client.");
    para(
        &mut d,
        [roman(
            "In a rules directory (-i), the rule for KEY is the directory rulesdir/KEY. It allows \
             if it holds a file KEY/allow, and denies if it holds KEY/deny instead; with neither, \
             the next key is tried; a missing rules directory has no rules. An allowing rule may \
             have:",
        )],
    );
    item(
        &mut d,
        "KEY/env/NAME",
        "A variable to give PROG, as s6-envdir reads it: the first line of the file, trailing \
         spaces, tabs and carriage returns removed, is NAME's value; an empty file removes NAME from the \
         environment. Names starting with a dot or holding = are skipped.",
    );
    item(
        &mut d,
        "KEY/exec",
        "A command line that replaces PROG, run as execlineb -Pc LINE: execline's execlineb must \
         be installed for such rules (without it the exec fails, exit 127).",
    );
    para(
        &mut d,
        [roman(
            "A rules file (-x) holds the same rules, compiled by s6-accessrules-cdb-from-fs: it is \
             read whole at start, so replacing it (atomically, as the compiler does) changes the \
             rules for the next client. Neither -i nor -x: every client is allowed, with a warning \
             at -v 2.",
        )],
    );

    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "Read (as s6-ipcserver sets them; PROTO is IPC there):",
    )]);
    item(
        &mut r,
        "PROTO",
        "The protocol prefix of the variables below. Must be set.",
    );
    item(
        &mut r,
        "${PROTO}REMOTEEUID, ${PROTO}REMOTEEGID",
        "The client's effective uid and gid, in decimal. Must be set: s6-ipcserver -P leaves them \
         out, and then every client is refused (exit 100).",
    );
    item(
        &mut r,
        "${PROTO}REMOTEGIDLIST",
        "Read only with -g: the client's supplementary groups, decimal gids separated by commas, \
         possibly none. Must then be set: where the server could not learn the groups (with -P, \
         or on a system that does not record them) it is unset, and the client is refused (exit \
         100) rather than matched on its primary gid alone.",
    );
    para(
        &mut r,
        [roman(
            "PROG gets the rule's env entries first, in the order the directory lists them, then \
             these changes over them:",
        )],
    );
    item(
        &mut r,
        "${PROTO}LOCALPATH",
        "With -e (the default): the -l value, or else the address of the socket the client \
         connected to, read from the connection on stdin (getsockname).",
    );
    para(
        &mut r,
        [roman(
            "With -E, PROTO and ${PROTO}REMOTEEUID, ${PROTO}REMOTEEGID, ${PROTO}REMOTEPID, \
             ${PROTO}REMOTEGIDLIST, ${PROTO}REMOTEPATH, ${PROTO}LOCALPATH and ${PROTO}CONNNUM are \
             removed instead, even if the rule set them. Everything else the rule sets or unsets \
             stands.",
        )],
    );

    r.control("SH", ["LOGGING"]);
    r.text([roman(
        "On stderr, one line per client, prefixed with \"s6-ipcserver-access: info:\":",
    )]);
    item(
        &mut r,
        "allow pid P uid U gid G",
        "At -v 1 (the default) and above. P is this program's pid, the one the server logs the \
         child under.",
    );
    item(
        &mut r,
        "deny pid P uid U gid G: Permission denied",
        "At -v 2: a deny rule was found.",
    );
    item(
        &mut r,
        "deny pid P uid U gid G: No such file or directory",
        "At -v 2: no key had a rule.",
    );
    item(
        &mut r,
        "warning: invoked without a ruleset!",
        "At -v 2, when neither -i nor -x was given (every client is then allowed).",
    );

    r.control("SH", ["EXIT STATUS"]);
    item(
        &mut r,
        "0",
        "After --help or --version (otherwise an allowed client's PROG replaces the program).",
    );
    item(
        &mut r,
        "1",
        "The client is denied: by a deny rule, or because no key has a rule.",
    );
    item(
        &mut r,
        "100",
        "Wrong usage; or PROTO, ${PROTO}REMOTEEUID or ${PROTO}REMOTEEGID is missing or not a \
         decimal number, or with -g ${PROTO}REMOTEGIDLIST is missing or not a list of gids (the \
         message names it).",
    );
    item(
        &mut r,
        "111",
        "The rules could not be read: an unreadable rules file or one that is not a rules cdb, \
         an unreadable env file or exec, a plain file where a directory belongs; or the local \
         address could not be read with -e.",
    );
    exit_exec(&mut r, "PROG (or execlineb, for a rule with exec)");

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman(
            "Let root and clients whose effective gid is 100 in (with -g, also those with 100 among their supplementary groups), limit everyone else to 2 connections at \
             once (with s6-connlimit), and refuse uid 65534:",
        )],
    );
    example(
        &mut r,
        &[
            "# mkdir -p rules/uid/0 rules/gid/100 rules/uid/65534 rules/uid/default/env",
            "# touch rules/uid/0/allow rules/gid/100/allow rules/uid/65534/deny",
            "# touch rules/uid/default/allow",
            "# echo 2 > rules/uid/default/env/IPCCONNMAX",
            &format!(
                "# {PROGRAM}{suffix} /run/demo.sock \\\n    {name} -v 2 -i rules {CONNLIMIT}{suffix} /usr/local/bin/demo"
            ),
        ],
    );
    para(
        &mut r,
        [roman(
            "The same rules compiled into a file, which a server that dropped its privileges must \
             be able to read:",
        )],
    );
    example(
        &mut r,
        &[
            &format!("# {CDB_FROM_FS}{suffix} -m 0644 /etc/demo/rules.cdb rules"),
            &format!(
                "# s6-envuidgid nobody {PROGRAM}{suffix} -U /run/demo.sock \\\n    {name} -x /etc/demo/rules.cdb /usr/local/bin/demo"
            ),
        ],
    );

    differences(&mut r, ACCESS);
    name_difference(&mut r, name, ACCESS);
    item(
        &mut r,
        "-g",
        "New: rules by the client's supplementary groups (${PROTO}REMOTEGIDLIST, which this \
         package's servers set). Without -g the lookup is exactly the C one.",
    );
    item(
        &mut r,
        "-E",
        "Also removes ${PROTO}REMOTEPID and ${PROTO}REMOTEGIDLIST, which this package's servers \
         set and the C program does not know.",
    );
    item(&mut r, "Option parsing", GETOPT_DIFFERENCE);
    item(&mut r, "Exec", EXEC_DIFFERENCE);

    see_also_toolkit(
        &mut r,
        suffix,
        &[PROGRAM, CONNLIMIT, CDB_FROM_FS, FS_FROM_CDB],
        false,
        "So is s6-envdir, whose format the env directories follow; execlineb is documented at \
         https://skarnet.org/software/execline/.",
    );
    (d, r)
}

/// s6-connlimit's page beyond clap's.
fn connlimit_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman("Read, and passed on to PROG unchanged:")]);
    item(
        &mut r,
        "PROTO",
        "The protocol prefix of the variables below. Must be set and not empty.",
    );
    item(
        &mut r,
        "${PROTO}CONNNUM",
        "How many connections this client has open, the new one included (s6-ipcserver's \
         IPCCONNNUM counts them per uid). Must be set, in decimal, even when no limit is set \
         (s6-ipcserver -P sets it empty: s6-connlimit cannot be used behind -P).",
    );
    item(
        &mut r,
        "${PROTO}CONNMAX",
        "The most connections this client may have open at once, in decimal; usually set by an \
         access rule (s6-ipcserver-access, env/IPCCONNMAX). If it is unset, there is no \
         limit.",
    );
    para(
        &mut r,
        [roman(
            "The client is refused when CONNNUM is above CONNMAX: IPCCONNMAX=N admits N \
             connections of one uid at once.",
        )],
    );

    r.control("SH", ["EXIT STATUS"]);
    item(
        &mut r,
        "0",
        "After --help or --version (otherwise an admitted client's PROG replaces the program).",
    );
    item(
        &mut r,
        "1",
        "The client is over its limit; the message is \"number of connections from this client \
         limited to N\".",
    );
    item(
        &mut r,
        "100",
        "Wrong usage; or PROTO is unset or empty, ${PROTO}CONNNUM is missing or not a decimal \
         number, or ${PROTO}CONNMAX is set but not a decimal number (the message names it).",
    );
    exit_exec(&mut r, "PROG");

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman(
            "At most 3 connections at once for uid 1000, unlimited (up to the server's -C) for \
             everyone else:",
        )],
    );
    example(
        &mut r,
        &[
            "# mkdir -p rules/uid/1000/env rules/uid/default",
            "# touch rules/uid/1000/allow rules/uid/default/allow",
            "# echo 3 > rules/uid/1000/env/IPCCONNMAX",
            &format!(
                "# {PROGRAM}{suffix} -C 10 /run/demo.sock \\\n    {ACCESS}{suffix} -i rules {name} /usr/local/bin/demo"
            ),
        ],
    );

    differences(&mut r, CONNLIMIT);
    name_difference(&mut r, name, CONNLIMIT);
    item(
        &mut r,
        "Options",
        "The command line is read with getopt, so -- ends it and --help and --version work; the \
         C program takes no option, and runs a PROG whose name starts with a dash.",
    );
    item(&mut r, "Exec", EXEC_DIFFERENCE);

    see_also_toolkit(&mut r, suffix, &[ACCESS, PROGRAM, SERVING], false, "");
    (Roff::new(), r)
}

/// s6-ipcclient's page beyond clap's.
fn ipcclient_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut d = Roff::new();
    para(
        &mut d,
        [roman(
            "Both descriptors are the same stream socket, blocking. PROG reads the server's answer \
             from fd 6 and writes its request to fd 7; its stdin, stdout and stderr are the \
             client's own. With -p the client's socket is bound to bindpath first, so that the \
             server sees that path in IPCREMOTEPATH; nothing is ever removed there, so a second \
             client with the same -p fails (Address already in use) until the file is removed.",
        )],
    );
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman("Set for PROG:")]);
    item(&mut r, "PROTO", "Always IPC.");
    item(
        &mut r,
        "IPCLOCALPATH",
        "The client's own address: the -l value, else the -p path, else empty.",
    );

    r.control("SH", ["EXIT STATUS"]);
    item(
        &mut r,
        "0",
        "After --help or --version (otherwise PROG replaces the client once connected).",
    );
    item(&mut r, "100", "Wrong usage (an empty path, say).");
    item(
        &mut r,
        "111",
        "The connection could not be made: bind to bindpath (Address already in use, say), \
         connect (Connection refused, No such file or directory...). The message says which.",
    );
    exit_exec(&mut r, "PROG");

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman("Read what a server says, and send it a line:")],
    );
    example(
        &mut r,
        &[
            &format!("$ {name} /tmp/whoami.sock sh -c 'cat <&6'"),
            "you are uid 1000",
            &format!("$ {name} -v /run/demo.sock sh -c 'echo hello >&7; head -n 1 <&6'"),
        ],
    );

    differences(&mut r, IPCCLIENT);
    name_difference(&mut r, name, IPCCLIENT);
    item(
        &mut r,
        "-v",
        "Logs \"s6-ipcclient: info: connected to PATH\"; the C program names itself twice in \
         that line.",
    );
    item(
        &mut r,
        "-q, -Q, -v",
        "The last one given wins; the C program counts them (-q -v is its default).",
    );
    item(&mut r, "Option parsing", GETOPT_DIFFERENCE);
    item(&mut r, "Exec", EXEC_DIFFERENCE);

    see_also_toolkit(&mut r, suffix, &[PROGRAM, SERVING], true, "");
    (d, r)
}

/// s6-accessrules-cdb-from-fs's page beyond clap's.
fn cdb_from_fs_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut d = Roff::new();
    para(
        &mut d,
        [roman(
            "Every DIR/TYPE/KEY directory holding allow or deny becomes a rule under the key \
             TYPE/KEY (uid/0, gid/100, uid/default...); names starting with a dot are skipped. \
             The output is byte for byte what the C compiler writes for the same tree.",
        )],
    );
    para(
        &mut d,
        [roman(
            "The temporary file is created with O_EXCL and given the mode exactly, whatever the \
             umask; on failure it is removed and CDBFILE is left as it was. With the default mode \
             0600 only the file's owner can read the rules: a server that dropped its privileges \
             cannot read a file root made that way, so give -m 0644 or chown the file to the \
             server's account.",
        )],
    );
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "None is read. The rules' env files are compiled, not applied: a rule's environment, \
         once compiled, may be at most 4096 bytes.",
    )]);

    r.control("SH", ["EXIT STATUS"]);
    item(&mut r, "0", "CDBFILE was written (or --help or --version).");
    item(
        &mut r,
        "100",
        "Wrong usage; or a rule's env compiles to more than 4096 bytes (the message names the \
         directory).",
    );
    item(
        &mut r,
        "111",
        "A system call failed, or the tree is not a rules tree: a plain file where a directory \
         belongs, an unreadable env file or exec, a directory in their place. Nothing was \
         replaced.",
    );
    para(
        &mut r,
        [roman(
            "An exec file of 4096 bytes or more is cut there, with a warning (\"possibly \
             truncated\").",
        )],
    );

    r.control("SH", ["EXAMPLES"]);
    example(
        &mut r,
        &[
            "# mkdir -p rules/uid/0 rules/uid/default",
            "# touch rules/uid/0/allow rules/uid/default/deny",
            &format!("# {name} -m 0644 /etc/demo/rules.cdb rules"),
            &format!(
                "# s6-envuidgid nobody {PROGRAM}{suffix} -U /run/demo.sock \\\n    {ACCESS}{suffix} -x /etc/demo/rules.cdb /usr/local/bin/demo"
            ),
        ],
    );
    para(
        &mut r,
        [roman(
            "Running it again after a change replaces the file under the running server.",
        )],
    );

    differences(&mut r, CDB_FROM_FS);
    name_difference(&mut r, name, CDB_FROM_FS);
    item(
        &mut r,
        "-m mode",
        "As in s6 2.14; the C program of s6 2.11 (Debian's) has no option and always writes 0600.",
    );
    item(
        &mut r,
        "Env size",
        "An env over 4096 bytes once compiled is refused (exit 100); the C compiler takes up to \
         4100 bytes, which its own s6-ipcserver-access then refuses.",
    );
    item(
        &mut r,
        "Unsearchable keys",
        "A key directory whose allow or deny cannot be looked at (EACCES) is an error, exit 111; \
         the C compiler may leave such a rule out, a deny too.",
    );
    item(&mut r, "Option parsing", GETOPT_DIFFERENCE);

    see_also_toolkit(&mut r, suffix, &[ACCESS, FS_FROM_CDB], false, "");
    (d, r)
}

/// s6-accessrules-fs-from-cdb's page beyond clap's.
fn fs_from_cdb_sections(name: &str, suffix: &str) -> (Roff, Roff) {
    let mut d = Roff::new();
    para(
        &mut d,
        [roman(
            "Each rule becomes DIR/KEY/allow or DIR/KEY/deny (an empty file), DIR/KEY/env/NAME \
             (the value and a newline; an empty file for a variable the rule removes) and \
             DIR/KEY/exec. Directories are made 0755 whatever the umask, files 0666 less the \
             umask. Note the order of the operands: the directory to create comes first.",
        )],
    );
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman("None is read or set.")]);

    r.control("SH", ["EXIT STATUS"]);
    item(&mut r, "0", "DIR was made (or --help or --version).");
    item(&mut r, "100", "Wrong usage.");
    item(
        &mut r,
        "111",
        "DIR exists (it is left alone), CDBFILE cannot be read or is not a rules cdb, a key \
         would leave DIR, or a system call failed. What was made of DIR is removed.",
    );

    r.control("SH", ["EXAMPLES"]);
    para(
        &mut r,
        [roman("See the rules a server reads, then change them:")],
    );
    example(
        &mut r,
        &[
            &format!("$ {name} /tmp/rules /etc/demo/rules.cdb"),
            "$ find /tmp/rules -type f",
            "/tmp/rules/uid/0/allow",
            "/tmp/rules/uid/default/deny",
            &format!("# {CDB_FROM_FS}{suffix} -m 0644 /etc/demo/rules.cdb /tmp/rules"),
        ],
    );

    differences(&mut r, FS_FROM_CDB);
    name_difference(&mut r, name, FS_FROM_CDB);
    item(
        &mut r,
        "Keys",
        "A key with an empty, . or .. component or a leading / is refused: the C program writes \
         outside DIR (../x/y) for such a key.",
    );
    item(
        &mut r,
        "Bad data",
        "A value that is not a rule is refused (the C program makes an empty rule directory and \
         succeeds), and so is a file shorter than a cdb's 2048-byte header (the C program may \
         make an empty DIR and succeed). An env name that is not a file name is refused with a \
         message.",
    );
    item(
        &mut r,
        "Newlines",
        "A newline inside an env value is written as a NUL byte, which s6-ipcserver-access and \
         s6-accessrules-cdb-from-fs read back as a newline; the C program writes the newline, \
         and the value read back stops there.",
    );
    item(&mut r, "Option parsing", GETOPT_DIFFERENCE);

    see_also_toolkit(&mut r, suffix, &[CDB_FROM_FS, ACCESS], false, "");
    (d, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the bash completion offers with the cursor on the last word
    /// of `line` (bash run for real; no bash-completion loaded, so a
    /// command's arguments are files).
    fn bash_complete(program: &Program, line: &[&str]) -> Vec<String> {
        let name = format!("{}-rs", program.name);
        let script = generate(program, &name)
            .into_iter()
            .find(|(p, _)| p.ends_with(format!("{name}.bash")))
            .map(|(_, b)| String::from_utf8(b).unwrap())
            .unwrap();
        let words: Vec<String> = std::iter::once(name.clone())
            .chain(line.iter().map(|w| format!("{w:?}")))
            .collect();
        let test = format!(
            "{script}\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
             _{}_getopt {name} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words.join(" "),
            line.len(),
            name.replace('-', "__"),
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &test])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn bash_completes_prog_as_a_command_after_the_operands() {
        let server = program(PROGRAM);
        // After path: a command name, not our options.
        let got = bash_complete(server, &["-c", "10", "/tmp/s", "tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
        assert!(!got.iter().any(|c| c.starts_with('-')), "{got:?}");
        // prog's own options are its business: none of ours.
        let got = bash_complete(server, &["/tmp/s", "sh", "-"]);
        assert!(!got.iter().any(|c| c == "-1" || c == "-c"), "{got:?}");
        // Before path: our options.
        let got = bash_complete(server, &["-"]);
        assert!(got.iter().any(|c| c == "-c"), "{got:?}");
        // A number is not a file name.
        let got = bash_complete(server, &["-c", ""]);
        assert_eq!(got, [""], "{got:?}");
        // s6-ipcserverd has no path: prog comes first.
        let got = bash_complete(program(SERVING), &["-v", "2", "tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
    }

    #[test]
    fn bash_completes_prog_in_every_program_that_runs_one() {
        // No operand before prog: after the options (and their values).
        for line in [
            &["-v", "2", "-i", "/tmp", "tru"][..],
            &["-Ev2", "--", "tru"],
        ] {
            let got = bash_complete(program(ACCESS), line);
            assert!(got.iter().any(|c| c == "true"), "{line:?}: {got:?}");
        }
        let got = bash_complete(program(CONNLIMIT), &["tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
        // path, then prog.
        let got = bash_complete(program(IPCCLIENT), &["-v", "-p", "/tmp/c", "/tmp/s", "tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
        let got = bash_complete(program(SOCKETBINDER), &["-b", "0", "-m", "/tmp/s", "tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
        // Before path: options, not commands.
        let got = bash_complete(program(SOCKETBINDER), &["-"]);
        assert!(got.iter().any(|c| c == "-a"), "{got:?}");
        // The converters run nothing: clap's completion only, which bash
        // loads.
        for p in [CDB_FROM_FS, FS_FROM_CDB] {
            let name = format!("{p}-rs");
            let (_, script) = generate(program(p), &name)
                .into_iter()
                .find(|(f, _)| f.ends_with(format!("{name}.bash")))
                .unwrap();
            let script = String::from_utf8(script).unwrap();
            assert!(!script.contains("_getopt"), "{p}");
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("{script}\ncomplete -p {name}")])
                .output()
                .unwrap();
            assert!(out.status.success(), "{p}: {out:?}");
        }
    }

    /// The suffix of the names the packages install the programs under
    /// (see ci/gen-docs).
    const SUFFIX: &str = "-rs";
    const PACKAGED_NAME: &str = "s6-ipcserver-rs";

    /// The committed pages in doc/ are what the packages install; they must
    /// be exactly what the clap definition generates today.
    #[test]
    fn committed_docs_are_fresh() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc");
        let mut stale = Vec::new();
        for (rel, want) in generate_all(SUFFIX) {
            let got = std::fs::read(doc.join(&rel)).unwrap_or_default();
            if got != want {
                stale.push(rel.display().to_string());
            }
        }
        assert!(
            stale.is_empty(),
            "doc/ is stale ({}): run ci/gen-docs and commit doc/",
            stale.join(", ")
        );
    }

    #[test]
    fn every_program_has_its_files() {
        let files = generate_all(SUFFIX);
        assert_eq!(files.len(), 4 * ALL.len());
        for p in ALL {
            for want in [
                format!("{}-rs.1", p.name),
                format!("completions/{}-rs.bash", p.name),
                format!("completions/_{}-rs", p.name),
                format!("completions/{}-rs.fish", p.name),
            ] {
                assert!(files.iter().any(|(f, _)| f == Path::new(&want)), "{want}");
            }
        }
    }

    /// Every page has the sections users look for, each once, documents
    /// every option of its clap definition, and uses the installed name.
    #[test]
    fn man_pages_have_the_sections_users_look_for() {
        for p in ALL {
            let name = format!("{}{SUFFIX}", p.name);
            let page = String::from_utf8(man_page(p, &name)).unwrap();
            let differences = format!("\"DIFFERENCES FROM THE C {}\"", p.name.to_uppercase());
            let mut sections = vec![
                "NAME",
                "SYNOPSIS",
                "DESCRIPTION",
                "OPTIONS",
                "ENVIRONMENT",
                "\"EXIT STATUS\"",
                "EXAMPLES",
                &differences,
                "\"SEE ALSO\"",
            ];
            if [PROGRAM, SERVING].contains(&p.name) {
                sections.push("SIGNALS");
            }
            for section in sections {
                assert_eq!(
                    page.matches(&format!(".SH {section}\n")).count(),
                    1,
                    "{name}: {section} not there once in\n{page}"
                );
            }
            for arg in (p.command)().get_arguments() {
                if let Some(c) = arg.get_short() {
                    assert!(
                        page.contains(&format!("\\fB\\-{c}\\fR")),
                        "{name}: -{c} missing"
                    );
                }
            }
            let escaped = name.replace('-', "\\-");
            assert!(
                page.contains(&format!("{escaped} \\- ")),
                "{name}: NAME line"
            );
            assert!(
                page.contains(&format!("\\fB{escaped}\\fR")),
                "{name}: SYNOPSIS"
            );
            // Its own C name is said only where it means the C program.
            assert!(page.contains("Packages install the program as"), "{name}");
            // SEE ALSO names this package's pages, never the page itself.
            let see_also = &page[page.find(".SH \"SEE ALSO\"").unwrap()..];
            assert!(see_also.contains("\\-rs\\fR(1)"), "{name}: {see_also}");
            assert!(!see_also.contains(&format!("\\fI{escaped}\\fR")), "{name}");
        }
    }

    #[test]
    fn pages_under_the_c_names_say_no_rename() {
        for p in ALL {
            let page = String::from_utf8(man_page(p, p.name)).unwrap();
            assert!(!page.contains("Packages install"), "{}", p.name);
            assert!(!page.contains("\\-rs"), "{}", p.name);
        }
    }

    #[test]
    fn renamed_pages_use_the_name_throughout() {
        for p in ALL {
            let name = format!("{}{SUFFIX}", p.name);
            for (rel, bytes) in generate(p, &name) {
                let text = String::from_utf8(bytes).unwrap();
                assert!(text.contains(&name), "{} lacks the name", rel.display());
            }
        }
        let page = String::from_utf8(man_page(program(PROGRAM), PACKAGED_NAME)).unwrap();
        assert!(
            page.contains("s6\\-ipcserver\\-rs \\- UCSPI"),
            "NAME line:\n{page}"
        );
    }

    #[test]
    fn the_serving_half_has_its_own_page() {
        let name = "s6-ipcserverd-rs";
        let page = String::from_utf8(man_page(program(SERVING), name)).unwrap();
        assert!(page.contains("s6\\-ipcserverd\\-rs"), "the name");
        assert!(!page.contains("\\-a perms"), "no binding options");
    }
}
