complete -c s6-ipcserver-access-rs -s v -d '0: fatal errors only; 1: also log allowed clients (default); 2: also denied clients and warnings' -r -f
complete -c s6-ipcserver-access-rs -s l -d 'Set ${PROTO}LOCALPATH to localname, without asking the socket (with -e)' -r -f
complete -c s6-ipcserver-access-rs -s i -d 'Rules in a directory: rulesdir/uid/N/allow and so on' -r -f -a "(__fish_complete_directories)"
complete -c s6-ipcserver-access-rs -s x -d 'Rules in a cdb file made by s6-accessrules-cdb-from-fs' -r -F
complete -c s6-ipcserver-access-rs -s e -d 'Set ${PROTO}LOCALPATH to the -l value or the socket\'s own address (default)'
complete -c s6-ipcserver-access-rs -s E -d 'Remove PROTO and ${PROTO}REMOTEEUID, REMOTEEGID, REMOTEPID, REMOTEGIDLIST, REMOTEPATH, LOCALPATH and CONNNUM, even if the rule set them; the rest of the rule\'s environment applies'
complete -c s6-ipcserver-access-rs -s g -d 'Also try gid/G for every G of ${PROTO}REMOTEGIDLIST, in order, after gid/EGID and before uid/default; refuse the client if the variable is unset. Only behind this package\'s s6-ipcserver or s6-ipcserverd, which set or remove it for every client: behind another server, a value it inherited would be trusted'
complete -c s6-ipcserver-access-rs -l help -d 'Print help and exit'
complete -c s6-ipcserver-access-rs -l version -d 'Print version and exit'
