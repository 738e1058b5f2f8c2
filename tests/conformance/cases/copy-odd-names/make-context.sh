cd context && for n in 'back\slash' 'co:lon' 'q"uote' "s'ingle" 'star*' 'ques?' '-dash' ' lead' 'trail ' '#hash' '%pct' 'tab	x'; do echo "$n" > "$n"; done
