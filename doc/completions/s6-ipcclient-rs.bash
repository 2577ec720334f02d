_s6__ipcclient__rs() {
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
                cmd="s6__ipcclient__rs"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        s6__ipcclient__rs)
            opts="-q -Q -v -p -l --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                -p)
                    local oldifs
                    if [ -n "${IFS+x}" ]; then
                        oldifs="$IFS"
                    fi
                    IFS=$'\n'
                    COMPREPLY=($(compgen -f "${cur}"))
                    if [ -n "${oldifs+x}" ]; then
                        IFS="$oldifs"
                    fi
                    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
                        compopt -o filenames
                    fi
                    return 0
                    ;;
                -l)
                    COMPREPLY=("${cur}")
                    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
                        compopt -o nospace
                    fi
                    return 0
                    ;;
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
    complete -F _s6__ipcclient__rs -o nosort -o bashdefault -o default s6-ipcclient-rs
else
    complete -F _s6__ipcclient__rs -o bashdefault -o default s6-ipcclient-rs
fi

# Added by xtask: getopt's end of options, then prog as a command.
_s6__ipcclient__rs_getopt() {
    local i=1 operands=0 opts_done=0 w cur="${COMP_WORDS[COMP_CWORD]}"
    while [ "$i" -lt "$COMP_CWORD" ]; do
        w="${COMP_WORDS[i]}"
        if [ "$opts_done" -eq 0 ] && [ "$w" = "--" ]; then
            opts_done=1
        elif [ "$opts_done" -eq 0 ] && [ "${#w}" -gt 1 ] && [ "${w#-}" != "$w" ]; then
            # A cluster whose last option takes the next word as its value.
            case "${w#-}" in
            *[pl]*)
                local rest="${w#-}"
                rest="${rest#*[pl]}"
                [ -z "$rest" ] && i=$((i + 1))
                ;;
            esac
        else
            opts_done=1
            operands=$((operands + 1))
            if [ "$operands" -gt 1 ]; then
                # prog is word i: complete it and its arguments as a command.
                if declare -F _command_offset >/dev/null; then
                    _command_offset "$i"
                else
                    COMPREPLY=($(compgen -f -- "$cur"))
                fi
                return 0
            fi
        fi
        i=$((i + 1))
    done
    # The cursor is on prog itself (not on an option's value, not on an
    # option): command names.
    if [ "$i" -eq "$COMP_CWORD" ] && [ "$operands" -eq 1 ] &&
        { [ "$opts_done" -eq 1 ] || [ "${cur#-}" = "$cur" ]; }; then
        COMPREPLY=($(compgen -c -- "$cur"))
        return 0
    fi
    _s6__ipcclient__rs "$@"
}
complete -F _s6__ipcclient__rs_getopt -o bashdefault -o default s6-ipcclient-rs
