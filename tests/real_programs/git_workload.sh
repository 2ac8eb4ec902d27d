# shellcheck shell=bash
# git workload (plain_vs_preload.sh git): a repository with a few commits, then log, diff, blame, gc
# and fsck. Authors and dates are fixed, so every object id is the same on every run. Runs under the
# preload as a whole: bash, git and the helpers it starts (pack-objects with threads, index-pack, gzip).
set -euo pipefail

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME='Ada Tester' GIT_AUTHOR_EMAIL=ada@example.com
export GIT_COMMITTER_NAME='Ada Tester' GIT_COMMITTER_EMAIL=ada@example.com

commit() {  # commit DAY MESSAGE
  export GIT_AUTHOR_DATE="2024-03-$1T12:00:00Z" GIT_COMMITTER_DATE="2024-03-$1T12:00:00Z"
  git add -A
  git commit -q -m "$2"
}

git init -q -b main repo
cd repo
mkdir -p src docs
seq 1 2000 > src/numbers.txt
printf 'line %d of the readme\n' $(seq 1 50) > docs/README
printf '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n' > src/main.c
commit 01 'Initial commit'

sed -i 's/^1[0-9]*5$/five/' src/numbers.txt
printf 'a new file\n' > src/new.txt
commit 02 'Replace some numbers, add new.txt'

git mv docs/README docs/README.md
rm src/new.txt
printf 'int helper(void) { return 42; }\n' >> src/main.c
commit 03 'Rename README, drop new.txt, add helper'

git checkout -q -b topic HEAD~1
printf 'topic work\n' > topic.txt
commit 04 'Topic work'
git checkout -q main
export GIT_COMMITTER_DATE=2024-03-05T12:00:00Z GIT_AUTHOR_DATE=2024-03-05T12:00:00Z
git merge -q --no-ff -m 'Merge topic' topic

git log --graph --stat --format=fuller
git diff --stat HEAD~3 HEAD
git diff HEAD~3 HEAD -- src/main.c docs
git diff HEAD~3 HEAD -- src/numbers.txt > numbers.diff
wc -l < numbers.diff
sha256sum numbers.diff
git blame -s src/main.c
git show --format=raw HEAD~1
git grep -c five
git gc -q --aggressive
git count-objects -v | grep -v -e '^size' -e '^size-pack'  # sizes depend on zlib; counts do not
git fsck --no-progress --strict
git archive --format=tar HEAD | sha256sum
git rev-list --all --objects | sort | sha256sum
