complete -c s6-connlimit-rs -l help -d 'Print help and exit'
complete -c s6-connlimit-rs -l version -d 'Print version and exit'
