#!/usr/bin/env bash
# Runs the README's examples in order, as a new user would, and checks the output they show.
#
# Usage: tests/readme/run_readme_examples.sh [README] [--keep]
#
# An example is a ```console block: lines starting with "$ " are commands (a trailing "\" continues
# one), the other lines are the output the README shows for the command above them (checked by
# match_output.awk: "..." skips lines or text, numbers match to their last digit). The commands run
# one by one in a fresh directory where build/, models/, tests/, scripts/ and bench/ of this
# checkout are visible, with stdin from /dev/null, in the README's order, so each step may use the
# files of the steps before it. A command ending in "&" runs in the background (a server) until the
# end; the output shown for it is awaited. A block preceded by the line
#   <!-- readme-test: skip: REASON -->
# is not run (a GPU, a network or large files); the reason is printed. A shell example in any other
# kind of block is an error, so that no example escapes the test.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
readme=$repo/README.md
keep=0
for arg in "$@"; do
  case $arg in
    --keep) keep=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) readme=$arg ;;
  esac
done
[[ -r $readme ]] || { echo "run_readme_examples: cannot read $readme" >&2; exit 2; }
name=$(basename "$readme")
matcher=$repo/tests/readme/match_output.awk

work=$(mktemp -d "${TMPDIR:-/tmp}/pinfer-readme.XXXXXX")
background=()
cleanup() {
  local pid
  for pid in "${background[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if ((keep)); then echo "run_readme_examples: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
# models/ is copied (2.5 MB): examples write beside the models they convert.
for d in build tests scripts bench; do ln -s "$repo/$d" "$work/$d"; done
cp -r "$repo/models" "$work/models"

failures=0 ran=0 skipped=0
fail() { echo "FAIL $name:$1: $2"; failures=$((failures + 1)); }

# Waits up to 60 s for a background command to print the shown lines.
await_output() {
  local shown=$1 log=$2 pid=$3 i
  for ((i = 0; i < 600; i++)); do
    awk -f "$matcher" "$shown" "$log" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  awk -f "$matcher" "$shown" "$log"
  return 1
}

# Runs one command (its text in $cmd, its README line in $cmd_line) and checks the shown output.
run_command() {
  local shown=$work/.shown log=$work/.log start rc
  printf '%s\n' "${expected[@]+"${expected[@]}"}" >"$shown"
  ((${#expected[@]})) || : >"$shown"
  ran=$((ran + 1))
  echo "$name:$cmd_line \$ $cmd"
  if [[ $cmd =~ ^(.*[^&])\&[[:space:]]*$ ]]; then
    (cd "$work" && exec bash -c "${BASH_REMATCH[1]}" </dev/null >"$work/.bg$ran.log" 2>&1) &
    background+=($!)
    ((${#expected[@]} == 0)) || await_output "$shown" "$work/.bg$ran.log" "$!" ||
      { fail "$cmd_line" "the background command did not print what the README shows"; sed 's/^/  > /' "$work/.bg$ran.log" | tail -20; }
    return
  fi
  start=$EPOCHREALTIME
  (cd "$work" && timeout 300 bash -o pipefail -c "$cmd" </dev/null >"$log" 2>&1)
  rc=$?
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "  (%.1f s)\n", b - a }'
  if ((rc != 0)); then
    fail "$cmd_line" "exit status $rc"; tail -20 "$log" | sed 's/^/  > /'
  elif ((${#expected[@]})) && ! awk -f "$matcher" "$shown" "$log"; then
    fail "$cmd_line" "output differs from the README"; tail -30 "$log" | sed 's/^/  > /'
  fi
}

in_block=0 runnable=0 skip_reason="" cmd="" cmd_line=0 continued=0 line_no=0
expected=()
flush() { if [[ -n $cmd ]]; then run_command; fi; cmd="" expected=(); }
while IFS= read -r line || [[ -n $line ]]; do
  line_no=$((line_no + 1))
  if ((!in_block)); then
    if [[ $line =~ ^\<\!--\ readme-test:\ skip:\ (.*)\ --\>$ ]]; then skip_reason=${BASH_REMATCH[1]}; continue; fi
    if [[ $line =~ ^\`\`\`(.*)$ ]]; then
      in_block=1 block_line=$line_no
      runnable=0; [[ ${BASH_REMATCH[1]} == console ]] && runnable=1
      if ((runnable)) && [[ -n $skip_reason ]]; then
        echo "$name:$line_no skipped: $skip_reason"; skipped=$((skipped + 1)); runnable=2
      fi
      skip_reason=""
      continue
    fi
    [[ -n ${line// } ]] && skip_reason=""
    continue
  fi
  if [[ $line == '```' ]]; then
    ((runnable == 1)) && flush
    in_block=0 continued=0 cmd=""; expected=()
    continue
  fi
  if ((runnable == 0)); then
    if [[ $line =~ ^(\$\ )?(build/bin/|scripts/|bench/|curl\ ) ]]; then
      fail "$line_no" "a shell example outside a \`\`\`console block (block at line $block_line) would not be tested"
    fi
    continue
  fi
  ((runnable == 2)) && continue
  if ((continued)); then
    cmd+=$'\n'$line
    [[ $line == *\\ ]] || continued=0
  elif [[ $line == '$ '* ]]; then
    flush
    cmd=${line#\$ } cmd_line=$line_no
    [[ $line == *\\ ]] && continued=1
  elif [[ -z $cmd ]]; then
    [[ -n ${line// } ]] && fail "$line_no" "output shown before any command"
  else
    expected+=("$line")
  fi
done <"$readme"
((in_block)) && fail "$block_line" "unterminated code block"

echo "run_readme_examples: $ran commands run, $skipped blocks skipped, $failures failed"
((failures == 0))
