complete -c s6-ipcclient-rs -s p -d 'Bind the client\'s socket to bindpath before connecting; it is never removed' -r -F
complete -c s6-ipcclient-rs -s l -d 'Set IPCLOCALPATH to localname' -r -f
complete -c s6-ipcclient-rs -s q -d 'Log fatal errors only'
complete -c s6-ipcclient-rs -s Q -d 'Log warnings too (default)'
complete -c s6-ipcclient-rs -s v -d 'Also say when connected'
complete -c s6-ipcclient-rs -l help -d 'Print help and exit'
complete -c s6-ipcclient-rs -l version -d 'Print version and exit'
