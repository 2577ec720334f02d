complete -c s6-accessrules-fs-from-cdb-rs -l help -d 'Print help and exit'
complete -c s6-accessrules-fs-from-cdb-rs -l version -d 'Print version and exit'
