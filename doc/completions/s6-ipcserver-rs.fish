complete -c s6-ipcserver-rs -s a -d 'Mode of the socket file, octal 0000 to 0777, whatever the umask [default: 0777]' -r -f
complete -c s6-ipcserver-rs -s c -d 'Serve at most maxconn clients at once; 0 means 1, above 1000 means 1000 [default: 40]' -r -f
complete -c s6-ipcserver-rs -s C -d 'Serve at most localmaxconn clients of one uid at once; 0 means 1, never above maxconn [default: 40]' -r -f
complete -c s6-ipcserver-rs -s b -d 'Listen backlog [default: SOMAXCONN]' -r -f
complete -c s6-ipcserver-rs -s G -d 'After binding, set the supplementary groups to this comma-separated gid list' -r -f
complete -c s6-ipcserver-rs -s g -d 'After binding, set the gid (0: leave as is)' -r -f
complete -c s6-ipcserver-rs -s u -d 'After binding, set the uid (0: leave as is)' -r -f
complete -c s6-ipcserver-rs -s 1 -d 'Write PATH and a newline to stdout once the socket accepts connections, then close stdout'
complete -c s6-ipcserver-rs -s q -d 'Log fatal errors only'
complete -c s6-ipcserver-rs -s Q -d 'Log warnings and denials too (default)'
complete -c s6-ipcserver-rs -s v -d 'Log every connection, exit and status'
complete -c s6-ipcserver-rs -s d -d 'Remove an existing socket at PATH before binding, under the lock on PATH.lock (default); never anything but a socket'
complete -c s6-ipcserver-rs -s D -d 'Never remove PATH: binding fails if it exists'
complete -c s6-ipcserver-rs -s P -d 'Do not look up client credentials; IPCREMOTEEUID and IPCREMOTEEGID are unset'
complete -c s6-ipcserver-rs -s p -d 'Look up client credentials (default)'
complete -c s6-ipcserver-rs -s U -d 'After binding, take uid, gid and groups from UID, GID and GIDLIST in the environment, and keep those from children; a later -u, -g or -G overrides its part'
complete -c s6-ipcserver-rs -l help -d 'Print help and exit'
complete -c s6-ipcserver-rs -l version -d 'Print version and exit'
