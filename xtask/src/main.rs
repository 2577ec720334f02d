//! Developer tasks. `gen OUTDIR [--name NAME]` writes the man page and the
//! bash, zsh and fish completions, all generated from the clap definition in
//! `s6_ipcserver::cli::command()`, so they cannot drift from `--help`.
//!
//! The packages install the program as `s6-ipcserver-rs` (so that it sits
//! beside skarnet's s6, which owns `/usr/bin/s6-ipcserver`); `doc/` holds the
//! pages for that name, and a test below fails when `doc/` is stale.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueHint;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};

/// The name of the cargo binary (and of the C program).
const PROGRAM: &str = "s6-ipcserver";

const USAGE: &str = "usage: cargo run -p xtask -- gen OUTDIR [--name NAME]\n\
    Writes OUTDIR/NAME.1 and OUTDIR/completions/{NAME.bash,_NAME,NAME.fish}.\n\
    NAME defaults to s6-ipcserver; the packages use s6-ipcserver-rs (see ci/gen-docs).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (outdir, name) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen", dir] => (dir, PROGRAM),
        ["gen", dir, "--name", name] | ["gen", "--name", name, dir] => (dir, name),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(100);
        }
    };
    match write_all(Path::new(outdir), name) {
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

fn write_all(outdir: &Path, name: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, bytes) in generate(name) {
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
fn documented_command(name: &str) -> clap::Command {
    s6_ipcserver::cli::command()
        .name(name.to_owned())
        .bin_name(name.to_owned())
        .override_usage(usage(name))
        .mut_arg("path", |a| a.value_hint(ValueHint::FilePath))
        .mut_arg("prog", |a| a.value_hint(ValueHint::CommandWithArguments))
}

/// The usage line of the clap definition (what `--help` prints), renamed.
fn usage(name: &str) -> String {
    s6_ipcserver::cli::USAGE.replacen(PROGRAM, name, 1)
}

/// Every generated file, as (path relative to the output directory, bytes).
pub fn generate(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![(PathBuf::from(format!("{name}.1")), man_page(name))];
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut documented_command(name), name, &mut buf);
        files.push((Path::new("completions").join(file), buf));
    }
    files
}

/// Writes one section of the man page.
type Section<'a> = dyn Fn(&mut dyn Write) -> std::io::Result<()> + 'a;

/// The man page: clap_mangen renders NAME, DESCRIPTION and OPTIONS from the
/// clap definition. SYNOPSIS is the definition's own usage line, because
/// clap_mangen ignores `override_usage` and cannot show `-q | -Q | -v` or
/// option values. The sections clap has no field for are written here,
/// from SPEC.md.
fn man_page(name: &str) -> Vec<u8> {
    let man = clap_mangen::Man::new(documented_command(name))
        .title(name.to_uppercase())
        .manual("User Commands");
    let synopsis = |w: &mut dyn Write| {
        let usage = usage(name);
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
    let extra = extra_sections(name).render();
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

fn extra_sections(name: &str) -> Roff {
    let mut r = Roff::new();

    r.control("SH", ["ENVIRONMENT"]);
    r.text([roman(
        "Every instance of prog runs with the server's environment plus these variables:",
    )]);
    item(&mut r, "PROTO", "Always IPC.");
    item(
        &mut r,
        "IPCREMOTEEUID",
        "The effective uid the client had when it connected, as the kernel recorded it. \
         Removed from the environment with -P.",
    );
    item(
        &mut r,
        "IPCREMOTEEGID",
        "The effective gid the client had when it connected. Removed from the environment with -P.",
    );
    item(
        &mut r,
        "IPCCONNNUM",
        "How many connections this client's uid has open, this one included. Set but empty with -P.",
    );
    item(
        &mut r,
        "IPCREMOTEPATH",
        "The path the client's own socket is bound to, or empty (the usual case). \
         It may contain any character.",
    );
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
            "A missing or invalid variable is named in the error message, and the server exits 100.",
        )],
    );

    r.control("SH", ["SIGNALS"]);
    item(
        &mut r,
        "SIGTERM",
        "Stop accepting and exit 0. Running children are left alone.",
    );
    item(
        &mut r,
        "SIGHUP",
        "Send SIGTERM then SIGCONT to every child, and keep serving.",
    );
    item(
        &mut r,
        "SIGQUIT",
        "Send SIGTERM then SIGCONT to every child, then exit 0.",
    );
    item(
        &mut r,
        "SIGABRT",
        "Send SIGKILL to every child, then exit 0.",
    );
    para(
        &mut r,
        [roman(
            "They act even when the server's parent left them ignored or blocked; children get none of them ignored or blocked. The socket file is left in place on exit; the next start with -d replaces it.",
        )],
    );
    para(
        &mut r,
        [roman(
            "On Linux (x86_64 and aarch64), unless -v or -P is given, one more child of the server, \
             shown under the server's own name, waits on the socket for the next client and serves it itself, \
             exactly as the server would (same checks, same environment), so that a lone client \
             is served without waking the server; the server accepts itself when clients queue up, \
             when a uid has reached its -C limit or more than 32 uids are connected, and whenever it logs each connection (-v). \
             That child is not a connection: SIGHUP leaves it alone, it is killed when \
             the server exits or dies unless it has taken a client, and signals sent to it while \
             it waits are dropped, not passed on to prog. While it waits, the server looks at it once a second; \
             if a client has waited through two looks and the child has not taken it (stopped, say), \
             the server kills it, logs a warning and accepts itself.",
        )],
    );

    r.control("SH", ["EXIT STATUS"]);
    item(
        &mut r,
        "0",
        "After SIGTERM, SIGQUIT or SIGABRT; and after --help or --version.",
    );
    item(
        &mut r,
        "100",
        "Wrong usage, or an invalid UID, GID or GIDLIST with -U. Nothing was created on disk.",
    );
    item(
        &mut r,
        "101",
        "An internal inconsistency (a bug: please report it).",
    );
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
             at most 10 clients at once and 2 per uid, the socket writable by its group only:",
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
        "Sets the socket file's mode, whatever the umask (as in later s6 releases).",
    );
    diff(
        "Privileges",
        "With -g or -u and no -G, the supplementary groups become just the new primary gid, so no \
         group of root's survives. After a uid drop the server checks that setuid(0) fails, and \
         dies if it does not.",
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

    r.control("SH", ["SEE ALSO"]);
    r.text([
        italic("s6-ipcclient"),
        roman("(1), "),
        italic("s6-envuidgid"),
        roman("(1), "),
        italic("s6-supervise"),
        roman("(8), "),
        italic("unix"),
        roman("(7)"),
    ]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The name the packages install the program under (see ci/gen-docs).
    const PACKAGED_NAME: &str = "s6-ipcserver-rs";

    /// The committed pages in doc/ are what the packages install; they must
    /// be exactly what the clap definition generates today.
    #[test]
    fn committed_docs_are_fresh() {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../doc");
        let mut stale = Vec::new();
        for (rel, want) in generate(PACKAGED_NAME) {
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
        let page = String::from_utf8(man_page(PROGRAM)).unwrap();
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
        for arg in s6_ipcserver::cli::command().get_arguments() {
            if let Some(c) = arg.get_short() {
                assert!(page.contains(&format!("\\-{c}")), "-{c} missing");
            }
        }
    }

    #[test]
    fn renamed_pages_use_the_name_throughout() {
        for (rel, bytes) in generate(PACKAGED_NAME) {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.contains(PACKAGED_NAME),
                "{} lacks the name",
                rel.display()
            );
        }
        let page = String::from_utf8(man_page(PACKAGED_NAME)).unwrap();
        assert!(
            page.contains("s6\\-ipcserver\\-rs \\- UCSPI"),
            "NAME line:\n{page}"
        );
    }
}
