//! Developer tasks. `gen OUTDIR [--suffix SUFFIX]` writes, for each program
//! (s6-ipcserver and s6-ipcserverd), the man page and the bash, zsh and
//! fish completions, all generated from the clap definitions in
//! `s6_ipcserver::programs`, so they cannot drift from `--help`.
//!
//! The packages install the programs as `s6-ipcserver-rs` and
//! `s6-ipcserverd-rs` (so that they sit beside skarnet's s6, which owns
//! `/usr/bin/s6-ipcserver` and `/usr/bin/s6-ipcserverd`); `doc/` holds the
//! pages for those names, and a test below fails when `doc/` is stale.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueHint;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// The name of the cargo binary (and of the C program).
const PROGRAM: &str = "s6-ipcserver";

/// The two programs, each documented under its own name plus a suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// s6-ipcserver: binds, drops privileges, serves.
    Server,
    /// s6-ipcserverd: serves a socket it is given.
    Serving,
}

impl Program {
    pub const ALL: [Program; 2] = [Program::Server, Program::Serving];

    /// The cargo binary's (and the C program's) name.
    pub fn base(self) -> &'static str {
        match self {
            Program::Server => PROGRAM,
            Program::Serving => "s6-ipcserverd",
        }
    }

    fn command(self) -> clap::Command {
        match self {
            Program::Server => s6_ipcserver::programs::ipcserver::command(),
            Program::Serving => s6_ipcserver::programs::ipcserverd::command(),
        }
    }

    fn usage_line(self) -> &'static str {
        match self {
            Program::Server => s6_ipcserver::programs::ipcserver::USAGE,
            Program::Serving => s6_ipcserver::programs::ipcserverd::USAGE,
        }
    }
}

const USAGE: &str = "usage: cargo run -p xtask -- gen OUTDIR [--suffix SUFFIX]\n\
    Writes, for s6-ipcserver and s6-ipcserverd each, OUTDIR/NAME.1 and\n\
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
fn documented_command(program: Program, name: &str) -> clap::Command {
    let cmd = program
        .command()
        .name(name.to_owned())
        .bin_name(name.to_owned())
        .override_usage(usage(program, name));
    // PATH first: mut_arg puts the argument last, and PROG must stay last.
    let cmd = match program {
        Program::Server => cmd.mut_arg("path", |a| a.value_hint(ValueHint::FilePath)),
        Program::Serving => cmd,
    };
    cmd.mut_arg("prog", |a| a.value_hint(ValueHint::CommandWithArguments))
}

/// The usage line of the clap definition (what `--help` prints), renamed.
fn usage(program: Program, name: &str) -> String {
    program.usage_line().replacen(program.base(), name, 1)
}

/// Every generated file of both programs, names ending in `suffix`.
pub fn generate_all(suffix: &str) -> Vec<(PathBuf, Vec<u8>)> {
    Program::ALL
        .iter()
        .flat_map(|&p| generate(p, &format!("{}{suffix}", p.base())))
        .collect()
}

/// Every generated file of `program` documented as `name`, as (path
/// relative to the output directory, bytes).
pub fn generate(program: Program, name: &str) -> Vec<(PathBuf, Vec<u8>)> {
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
            buf.extend_from_slice(bash_getopt(program, name).as_bytes());
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
/// else files), and leaves everything else to clap's function.
fn bash_getopt(program: Program, name: &str) -> String {
    let cmd = documented_command(program, name);
    let with_value: String = cmd
        .get_arguments()
        .filter(|a| matches!(a.get_action(), clap::ArgAction::Append))
        .filter_map(|a| a.get_short())
        .collect();
    // Operands before prog: path for s6-ipcserver, none for s6-ipcserverd.
    let before_prog = usize::from(cmd.get_arguments().any(|a| a.get_id() == "path"));
    let clap_fn = format!("_{}", name.replace('-', "__"));
    let wrapper = format!("{clap_fn}_getopt");
    format!(
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
    )
}

/// Writes one section of the man page.
type Section<'a> = dyn Fn(&mut dyn Write) -> std::io::Result<()> + 'a;

/// The man page: clap_mangen renders NAME, DESCRIPTION and OPTIONS from the
/// clap definition. SYNOPSIS is the definition's own usage line, because
/// clap_mangen ignores `override_usage` and cannot show `-q | -Q | -v` or
/// option values. The sections clap has no field for are written here,
/// saying what the README's Reference says.
fn man_page(program: Program, name: &str) -> Vec<u8> {
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
    let parts: [&Section; 5] = [
        &|w| man.render_title(w),
        &|w| man.render_name_section(w),
        &synopsis,
        &|w| man.render_description_section(w),
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
    let extra = match program {
        Program::Server => extra_sections(name),
        Program::Serving => extra_sections_d(name),
    }
    .render();
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

fn extra_sections(name: &str) -> Roff {
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

    let serving_half = name.replacen(PROGRAM, Program::Serving.base(), 1);
    see_also(&mut r, &serving_half);
    r
}

/// SEE ALSO: the other program of this package under its installed name,
/// unix(7), and where the C s6 programs both work with are documented
/// (Debian's s6 installs no man pages for them).
fn see_also(r: &mut Roff, sibling: &str) {
    r.control("SH", ["SEE ALSO"]);
    r.text([
        italic(sibling),
        roman("(1), "),
        italic("unix"),
        roman("(7)."),
    ]);
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
fn extra_sections_d(name: &str) -> Roff {
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
    if name != Program::Serving.base() {
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

    let binding_half = name.replacen(Program::Serving.base(), PROGRAM, 1);
    see_also(&mut r, &binding_half);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the bash completion offers with the cursor on the last word
    /// of `line` (bash run for real; no bash-completion loaded, so a
    /// command's arguments are files).
    fn bash_complete(program: Program, line: &[&str]) -> Vec<String> {
        let name = format!("{}-rs", program.base());
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
        let server = Program::ALL[0];
        assert_eq!(server.base(), PROGRAM);
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
        let got = bash_complete(Program::Serving, &["-v", "2", "tru"]);
        assert!(got.iter().any(|c| c == "true"), "{got:?}");
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
    fn man_page_has_the_sections_users_look_for() {
        let page = String::from_utf8(man_page(Program::Server, PROGRAM)).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "ENVIRONMENT",
            "SIGNALS",
            "\"EXIT STATUS\"",
            "EXAMPLES",
            "\"DIFFERENCES FROM THE C S6-IPCSERVER\"",
        ] {
            assert!(
                page.contains(&format!(".SH {section}\n")),
                "no {section} in\n{page}"
            );
        }
        // Every option of the clap definition is documented.
        for arg in s6_ipcserver::programs::ipcserver::command().get_arguments() {
            if let Some(c) = arg.get_short() {
                assert!(page.contains(&format!("\\-{c}")), "-{c} missing");
            }
        }
    }

    #[test]
    fn renamed_pages_use_the_name_throughout() {
        for (rel, bytes) in generate(Program::Server, PACKAGED_NAME) {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains(PACKAGED_NAME),
                "{} lacks the name",
                rel.display()
            );
        }
        let page = String::from_utf8(man_page(Program::Server, PACKAGED_NAME)).unwrap();
        assert!(
            page.contains("s6\\-ipcserver\\-rs \\- UCSPI"),
            "NAME line:\n{page}"
        );
    }

    #[test]
    fn the_serving_half_has_its_own_page() {
        let name = "s6-ipcserverd-rs";
        let page = String::from_utf8(man_page(Program::Serving, name)).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "ENVIRONMENT",
            "SIGNALS",
            "\"EXIT STATUS\"",
            "EXAMPLES",
            "\"DIFFERENCES FROM THE C S6-IPCSERVERD\"",
        ] {
            assert!(page.contains(&format!(".SH {section}\n")), "no {section}");
        }
        for arg in s6_ipcserver::programs::ipcserverd::command().get_arguments() {
            if let Some(c) = arg.get_short() {
                assert!(page.contains(&format!("\\-{c}")), "-{c} missing");
            }
        }
        assert!(page.contains("s6\\-ipcserverd\\-rs"), "the name");
        assert_eq!(
            page.matches(".SH ENVIRONMENT\n").count(),
            1,
            "each section once"
        );
        assert_eq!(
            page.matches(".SH SIGNALS\n").count(),
            1,
            "each section once"
        );
        assert!(!page.contains("\\-a perms"), "no binding options");
    }
}
