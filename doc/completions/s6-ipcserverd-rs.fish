complete -c s6-ipcserverd-rs -s v -d '0: fatal errors only; 1: warnings and denials too (default); 2: every connection, exit and status' -r -f
complete -c s6-ipcserverd-rs -s c -d 'Serve at most maxconn clients at once; 0 means 1, above 1000 means 1000 [default: 40]' -r -f
complete -c s6-ipcserverd-rs -s C -d 'Serve at most localmaxconn clients of one uid at once; 0 means 1, never above maxconn [default: 40]' -r -f
complete -c s6-ipcserverd-rs -s 1 -d 'Write a newline to stdout once connections are accepted, then close stdout'
complete -c s6-ipcserverd-rs -s P -d 'Do not look up client credentials; IPCREMOTEEUID and IPCREMOTEEGID are unset'
complete -c s6-ipcserverd-rs -s p -d 'Look up client credentials (default)'
complete -c s6-ipcserverd-rs -l help -d 'Print help and exit'
complete -c s6-ipcserverd-rs -l version -d 'Print version and exit'
