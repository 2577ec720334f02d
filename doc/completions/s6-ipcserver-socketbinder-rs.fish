complete -c s6-ipcserver-socketbinder-rs -s b -d 'Listen backlog; 0: do not listen [default: SOMAXCONN]' -r -f
complete -c s6-ipcserver-socketbinder-rs -s a -d 'Mode of the socket file, octal 0000 to 0777, whatever the umask [default: 0777]' -r -f
complete -c s6-ipcserver-socketbinder-rs -s d -d 'Remove an existing socket at PATH before binding, under the lock on PATH.lock, held until the exec (default); never anything but a socket'
complete -c s6-ipcserver-socketbinder-rs -s D -d 'Never remove PATH: binding fails if it exists'
complete -c s6-ipcserver-socketbinder-rs -s M -d 'A stream socket (SOCK_STREAM, default)'
complete -c s6-ipcserver-socketbinder-rs -s m -d 'A datagram socket (SOCK_DGRAM); give -b 0 with it'
complete -c s6-ipcserver-socketbinder-rs -s B -d 'Leave the socket blocking (default: non-blocking)'
complete -c s6-ipcserver-socketbinder-rs -l help -d 'Print help and exit'
complete -c s6-ipcserver-socketbinder-rs -l version -d 'Print version and exit'
