_s6__accessrules__fs__from__cdb__rs() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="s6__accessrules__fs__from__cdb__rs"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        s6__accessrules__fs__from__cdb__rs)
            opts="--help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _s6__accessrules__fs__from__cdb__rs -o nosort -o bashdefault -o default s6-accessrules-fs-from-cdb-rs
else
    complete -F _s6__accessrules__fs__from__cdb__rs -o bashdefault -o default s6-accessrules-fs-from-cdb-rs
fi
