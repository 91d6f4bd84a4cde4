# Homes: {{homeRoot}} (root), the slot's {{slotHome}} (its user only), and {{staged}} where {{user}}'s worker
# leaves the node's Claude settings for the slot to copy (it cannot read {{home}}).
for fk_d in {{homeRoot}} {{slotHome}} {{staged}}; do
  [ -d "$fk_d" ] || FK_CHANGED=1
done
install -d -m 0755 -o root -g {{rootGroup}} {{homeRoot}}
install -d -m 0700 -o {{slotUser}} -g {{slotUser}} {{slotHome}}
install -d -m 0755 -o {{user}} -g {{group}} {{staged}}
# {{user}}'s home, closed to other users (tasks included); its owner and group keep their access.
case $(ls -ld {{home}}) in
  d??????---*) ;;
  *)
    chmod o-rwx {{home}}
    FK_CHANGED=1
    fk_log "closed {{home}} to other users (chmod o-rwx)"
    ;;
esac
# The one sudoers rule ({{sudoers}}, a file of this bundle, placed after this step), checked by visudo
# first: a broken file under sudoers.d stops sudo for everyone.
if ! printf '%s' {{sudoersRule}} | visudo -cqf - >/dev/null; then
  fk_die "visudo refused the rendered rule for {{sudoers}}; nothing was placed"
fi
