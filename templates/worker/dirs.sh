# Homes: {{homeRoot}} (root), the slot's {{slotHome}} (its user only), and {{staged}} where {{user}}'s worker
# leaves the node's Claude settings for the slot to copy (it cannot read {{home}}).
for fk_d in {{q.homeRoot}} {{q.slotHome}} {{q.staged}}; do
  [ -d "$fk_d" ] || FK_CHANGED=1
done
install -d -m 0755 -o root -g {{q.rootGroup}} {{q.homeRoot}}
install -d -m 0700 -o {{q.slotUser}} -g {{q.slotUser}} {{q.slotHome}}
install -d -m 0755 -o {{q.user}} -g {{q.group}} {{q.staged}}
# {{user}}'s home, closed to other users (tasks included); its owner and group keep their access.
case $(ls -ld {{q.home}}) in
  d??????---*) ;;
  *)
    chmod o-rwx {{q.home}}
    FK_CHANGED=1
    fk_log "closed {{home}} to other users (chmod o-rwx)"
    ;;
esac
# The one sudoers rule ({{sudoers}}, a file of this bundle, placed after this step), checked by visudo
# first: a broken file under sudoers.d stops sudo for everyone.
if ! visudo -cqf - >/dev/null <<'FLEETKIT_SUDOERS'
{{sudoersRule}}FLEETKIT_SUDOERS
then
  fk_die "visudo refused the rendered rule for {{sudoers}}; nothing was placed"
fi
