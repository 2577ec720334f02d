complete -c s6-accessrules-cdb-from-fs-rs -s m -d 'Create CDBFILE with this octal mode, 0000 to 0777 [default: 0600]' -r -f
complete -c s6-accessrules-cdb-from-fs-rs -l help -d 'Print help and exit'
complete -c s6-accessrules-cdb-from-fs-rs -l version -d 'Print version and exit'
