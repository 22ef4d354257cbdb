# bash completion for thingsync and thingsync-sim: commands, flags and the values of flags
# that take a fixed set (docs/reference.md lists them; tests/ops/check-completion.sh keeps
# the two in step). Installed as share/bash-completion/completions/thingsync and
# .../thingsync-sim, where bash-completion loads it on first use; or source it by hand.
# Needs nothing from the bash-completion package.

# The word being completed and the one before it, with "--flag=value" split by bash at '='
# (COMP_WORDBREAKS) put back together: sets _ts_cur and _ts_prev.
_thingsync_words() {
  _ts_cur=${COMP_WORDS[COMP_CWORD]}
  _ts_prev=
  ((COMP_CWORD > 0)) && _ts_prev=${COMP_WORDS[COMP_CWORD - 1]}
  if [[ $_ts_cur == "=" ]]; then
    _ts_cur=
  elif [[ $_ts_prev == "=" ]] && ((COMP_CWORD > 1)); then
    _ts_prev=${COMP_WORDS[COMP_CWORD - 2]}
  fi
}

# COMPREPLY from a word list; from file or directory names with "-f" or "-d".
_thingsync_reply() {
  local IFS=$'\n'
  case $1 in
    -f | -d)
      compopt -o filenames 2>/dev/null
      # shellcheck disable=SC2207  # compgen's output, one name a line
      COMPREPLY=($(compgen "$1" -- "$_ts_cur"))
      ;;
    *)
      IFS=' '
      # shellcheck disable=SC2207
      COMPREPLY=($(compgen -W "$1" -- "$_ts_cur"))
      ;;
  esac
}

# The flags of `words` (a space-separated list) less those already on the line, except the
# repeatable ones given in $2.
_thingsync_unused() {
  local flag w out="" used
  for flag in $1; do
    used=
    if [[ " $2 " != *" $flag "* ]]; then
      for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        [[ $w == "$flag" ]] && used=1 && break
      done
    fi
    [[ -z $used ]] && out+="$flag "
  done
  printf '%s' "$out"
}

_thingsync() {
  local _ts_cur _ts_prev
  _thingsync_words
  local commands="run plan apply validate export diff history version"
  local common="--log-level --log-format --help --version"
  local cmd="" i w
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --log-level | --log-format | --config | --output | --target | --target-file | --out | \
        --max-deletes | --output-dir | --device | --since)
        # the flag's value is the next word (or the two after "=")
        [[ ${COMP_WORDS[i + 1]:-} == "=" ]] && ((i++))
        ((i++))
        continue
        ;;
    esac
    if [[ " $commands " == *" $w "* ]]; then
      cmd=$w
      break
    fi
  done

  case $_ts_prev in
    --log-level) _thingsync_reply "trace debug info warn error"; return ;;
    --log-format) _thingsync_reply "text json"; return ;;
    --output)
      if [[ $cmd == history ]]; then _thingsync_reply "text json"; else _thingsync_reply "text json markdown"; fi
      return
      ;;
    --config | --target-file | --out) _thingsync_reply -f; return ;;
    --output-dir) _thingsync_reply -d; return ;;
    --target | --max-deletes | --device | --since) COMPREPLY=(); return ;;
  esac

  if [[ -z $cmd ]]; then
    if [[ $_ts_cur == -* ]]; then
      _thingsync_reply "$common"
    else
      _thingsync_reply "$commands"
    fi
    return
  fi

  local flags=""
  case $cmd in
    run) flags="--config --observe" ;;
    plan) flags="--config --output --target --target-file --out" ;;
    apply) flags="--config --yes --target --target-file --max-deletes --retry-failed --approve-deletes" ;;
    validate) flags="--config" ;;
    export) flags="--config --output-dir" ;;
    diff) flags="--config" ;;
    history) flags="--config --device --since --output" ;;
    version) flags="" ;;
  esac
  if [[ $_ts_cur == -* ]]; then
    _thingsync_reply "$(_thingsync_unused "$flags $common" "--target")"
    return
  fi
  case $cmd in
    validate | apply) _thingsync_reply -f ;;  # desired-state paths; a saved plan
    *) COMPREPLY=() ;;
  esac
}

_thingsync_sim() {
  local _ts_cur _ts_prev
  _thingsync_words
  case $_ts_prev in
    --duplicates) _thingsync_reply "allow reject"; return ;;
    --next-links) _thingsync_reply "absolute relative"; return ;;
    --data | --request-log | --tls-cert | --tls-key) _thingsync_reply -f; return ;;
    --rate-limit-retry-after) _thingsync_reply "0 1"; return ;;
    --listen | --token | --oauth-client | --token-lifetime | --rate-limit | --fail-rate | \
      --latency | --drop-after-create | --fail-after-commit | --page-size | --max-page-size | \
      --max-body | --seed | --random-seed | --client-id)
      COMPREPLY=()
      return
      ;;
  esac
  local flags="--listen --token --oauth-client --token-lifetime --rate-limit
    --rate-limit-retry-after --fail-rate --latency --drop-after-create --fail-after-commit
    --duplicates --page-size --max-page-size
    --max-body --next-links --data --seed --random-seed --client-id --admin --request-log
    --tls-cert --tls-key --help --version"
  _thingsync_reply "$(_thingsync_unused "$flags" "--oauth-client")"
}

complete -F _thingsync thingsync
complete -F _thingsync_sim thingsync-sim
