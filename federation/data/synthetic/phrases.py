"""Paraphrase banks: the only text the synthetic generator ever writes.

Everything here is deliberately non-explicit: grooming lines stay at the level of the
documented risk indicators (age questions, flattery, gifts, secrecy, isolation, moving to
another app, photo and meeting requests, pressure), never sexual content.

The banks are written in a small line format, parsed by :mod:`.bank`::

    == bank-name                 starts a bank; blank lines separate exchanges
    G[secrecy]: alt | alt        a line: role, indicator codes, alternatives
    C?: lol | haha               "?" marks a line that is kept half of the time
    @ask_age                     an alternative naming a shared set, expanded in place

Roles are ``G`` (groomer) and ``C`` (child) in ``grooming:*`` banks and ``A``/``B``
elsewhere. Only ``G`` lines carry indicator codes. Every alternative of a line must fit
every alternative of the lines around it, so that any choice reads as a coherent exchange.

The shared sets (``SHARED``) are the heart of the task's difficulty: the same surface
phrasing ("how old are you?", "send me a pic", "let's meet at the park") occurs in
grooming conversations, where it is annotated, and in hard negatives (peers, dating
adults, parents, coaches, traders, a child reporting a stranger), where it is not. Slots
such as ``{game}`` are filled once per conversation from ``SLOTS``; their value lists are
short on purpose, because every distinct message text costs encoder time downstream.
"""

from __future__ import annotations

SLOTS: dict[str, tuple[str, ...]] = {
    "game": ("fortnite", "minecraft", "roblox", "fifa", "valorant"),
    "app": ("snap", "whatsapp", "discord", "insta", "telegram"),
    "day": ("saturday", "sunday", "friday", "tomorrow"),
    "place": ("the park", "the mall", "the station", "the cinema"),
    "item": ("bike", "phone", "jacket", "desk", "guitar"),
    "price": ("20", "35", "50", "80"),
    "time": ("4", "5", "6", "7"),
    "subject": ("maths", "science", "english", "history"),
    "sport": ("football", "basketball", "swimming", "netball"),
    "artist": ("taylor swift", "billie eilish", "drake", "olivia rodrigo"),
    "name": ("Sam", "Alex", "Jordan", "Mia", "Leo", "Ella"),
    "age_child": ("12", "13", "14", "15"),
    "age_claim": ("15", "16", "17"),
    "age_adult": ("24", "29", "33", "38"),
    "skin": ("a skin", "the battle pass", "some robux", "v-bucks"),
    "pet": ("dog", "cat", "hamster"),
    "show": ("stranger things", "wednesday", "the office", "bluey"),
    "food": ("pizza", "pasta", "tacos", "curry"),
}

SHARED = """
@hi = hey | hi | hello | heyy | hiya | yo
@ok = ok | okay | ok cool | sure | alright | k
@laugh = lol | haha | lmao | hahaha
@idk = idk | not sure | i don't know | maybe
@nice = nice | cool | nice one | awesome
@thanks = thanks | thank you | thanks!! | ty
@ack = just curious | just asking | just wondering | ok good to know | cool cool | fair enough
@ask_age = how old are you? | how old r u? | what age are you? | how old are you btw? | wait how old are you?
@ask_school = what school do you go to? | which school are you at? | what year are you in? | are you still at school?
@ask_where = where do you live? | where are you from? | what part of town are you in? | do you live near the centre?
@compliment = you're really mature | you're so talented | you're really smart you know that | you look great in your pic | you have a really nice smile | you're different from other people
@offer_credit = i can send you some game credit | want me to buy you {skin}? | i can get you {skin} if you want | i'll send you credit for {game}
@parents_home = are your parents home? | is anyone else home? | are you home alone? | is your mum around?
@dont_tell = don't tell anyone ok? | keep it a secret | don't say anything yet | this stays between us | promise you won't tell
@delete = delete the chat after | delete these messages ok | clear the chat when you're done
@move_app = add me on {app} | let's talk on {app} | do you have {app}? | message me on {app} instead | what's your {app}?
@send_pic = send me a pic | can you send a pic? | send a selfie | got a pic? | send me a photo
@video = can we video call? | turn your camera on | let's facetime later | can you video chat tonight?
@meet = we should meet up | let's meet at {place} | want to meet {day}? | i can pick you up | meet me at {place} after school?
@answer_me = answer me | why are you ignoring me | reply!! | hello?? answer | you better answer | why aren't you replying
@busy = sorry was busy | sorry i was at dinner | my phone died | sorry was doing homework | sorry fell asleep
@gtg = gtg | got to go | talk later | bye | night | cya tomorrow | brb
"""

GROOMING = """
== grooming:personal_question
G[personal_question]: @ask_age
C: {age_child} | im {age_child} | {age_child} u? | why?
G: cool i'm {age_claim} | age is just a number anyway | oh you seem older | @ack
C?: @ok | @laugh

G[personal_question]: @ask_school
C: year 8 | year 9 | the one near the park lol | why do you want to know?
G: @ack | i used to go near there

G[personal_question]: @ask_where
C: near the centre | why? | not telling lol | not far from {place}
G: @ack | i'm not far from there

G[personal_question]: do you have brothers or sisters? | do you have your own room? | do you walk home from school?
C: one brother | yeah | sometimes | no
G: nice | cool | ok good to know

G[personal_question]: what time do you get home from school? | when do you finish school? | what time do you usually log off?
C: around {time} | like {time} | it depends
G: ok good to know | nice | cool

G[personal_question]: do you have a lot of friends at school? | what's your real name? | when's your birthday?
C~: a few | why do you want to know? | in march
G: just want to know you better | i like knowing about you

G[personal_question]: what do you look like? | what colour is your hair? | are you tall?
C~: idk normal | brown | kind of
G: cool | nice

G[personal_question]: do you have your own phone? | is that your own laptop? | do you have a tablet in your room?
C: yeah | it's my mum's old one | no, shared
G: nice | ok | cool

== grooming:flattery
G[flattery]: @compliment
C: aw thanks | lol no | really? | haha stop
G?: i mean it | seriously | it's true

G[flattery]: you look so mature for your age | you seem way older than {age_child} | you're not like other kids your age | you're really mature for your age
C: aw thanks | lol no | really? | people say that
G?: i mean it | seriously | it's true

G[flattery]: you're so pretty in your profile pic | you're really cute | you have a great smile | you're beautiful you know
C: thanks i guess | @laugh | omg thanks | stop it

G[flattery]: you're special you know that | you're my favourite person to talk to | you're so much smarter than people my age | you get me better than anyone
C: aw | haha ok | that's nice | @laugh

G[flattery]: you're the best at {game} i've seen | you're way better than my friends | you're so talented at everything
C: @laugh | thanks!! | no i'm not

== grooming:gift
G[gift]: @offer_credit
C: wait really? | omg yes | why would you do that | no it's ok
G: sure, you deserve it | yeah no problem | it's nothing, i like you

G[gift]: i can send you some money if you need it | want me to top up your phone? | i'll get you a new phone case | i can buy you those shoes you wanted
C: wait really? | omg yes | no it's ok
G: yeah no problem | it's nothing for me | you deserve nice things

G[gift]: i bought you {skin} | check your account, i sent you {skin} | i got you something, check {game}
C: omg thank you!! | no way | thanks so much
G?: you owe me one haha | anything for you
G?[secrecy]: just don't tell anyone i sent it | don't tell your parents i got you that

G[gift]: want me to order you some {food}? | i could get you tickets to see {artist} | i'll pay for your {game} pass this month
C: no way really? | omg | you don't have to
G: i want to | only for you | it's fine, i've got money

== grooming:risk_check
G[risk_check]: @parents_home
C: no they're at work | just me | my mum is downstairs | why?
G: ok good | just asking | cool, we can talk more then

G[risk_check]: who else uses this computer? | does your mum check your phone? | do your parents read your messages? | is your phone shared with anyone?
C~: just me | sometimes | my dad does sometimes | nah it's mine
G: ok good | be careful then | cool

G[risk_check]: what time do your parents get home? | are you alone right now? | is your door locked? | is anyone reading over your shoulder?
C~: around {time} | yeah | why | no
G: just asking | so we have time to talk | ok good

G[risk_check]: does anyone else know your password? | do your parents know about this app? | can your parents see your screen time?
C: no | i don't think so | my mum does
G: better keep it that way | ok | ok good

== grooming:secrecy
G[secrecy]: @dont_tell
C: ok | why not? | ok i won't | @ok
G: they wouldn't understand | it's just better that way | good

G[secrecy]: don't tell your parents about us | this is our little secret | your parents wouldn't get it, don't tell them | nobody needs to know we talk
C: ok | why not? | ok i won't | i don't tell them anything anyway
G?: they wouldn't understand | good | they'd just overreact

G[secrecy]: @delete
C: ok | why? | done | @ok
G?: just in case | good

G[secrecy]: if anyone asks, say i'm a friend from school | say we met at {game} club | tell them i'm your cousin
C: ok | why? | lol ok
G?: it's easier that way | less hassle that way

== grooming:isolation
G[isolation]: your friends don't get you like i do | i'm the only one who really understands you | your parents are so unfair to you
C: yeah maybe | they're ok sometimes | i guess
G: you can always talk to me | i'll always be here for you | talk to me anytime

G[isolation]: you don't need them, you've got me | they're just jealous of you | forget about them, they don't care | your parents don't listen to you like i do
C: yeah | i guess | maybe you're right | idk
G?: i'm always here | you can always talk to me

G[isolation]: your mum sounds so strict | nobody treats you the way you deserve | your friends seem fake tbh
C: she is | i know | maybe
G?: you deserve better | you deserve more than that

== grooming:app_move
G[app_move]: @move_app
C: ok | ok added you | i don't have it | my mum doesn't let me have {app}
G[app_move]: download it, it's easy | add me there | ok i'll message you there

G[app_move]: this app is weird, let's use {app} | can we talk somewhere more private? | this chat gets checked, use {app}
C: ok | sure | idk
G: it's better there | trust me

G[app_move,secrecy]: let's use a chat that deletes messages | i made a private server just for us | switch to {app}, it's more private
C: ok | why? | ok i joined
G: it's just easier | so no one bothers us

== grooming:photo_request
G[photo_request]: @send_pic
C: why | @idk | ok one sec | maybe later
G[photo_request]: just want to see you | i sent you mine | please, just one

G[photo_request]: send me a pic of you | i want to see what you look like now | send me one just for me
C: why | ok | maybe later | idk | not now
G?[pressure]: come on, just one | please, don't be boring

G[photo_request]: @video
C: my parents are home | maybe | ok | not tonight
G: tomorrow then | ok later

G[photo_request]: send me a pic from today | what are you doing right now? send a pic | show me your new haircut
C: lol why | ok | later
G: just want to see | come on

== grooming:meeting_request
G[meeting_request]: @meet
C: idk | maybe | i'm not allowed | where?
G: it'll be fun | we can just hang out | it'll be our thing

G[meeting_request]: i could come to your town {day} | i can pick you up after school | let's meet somewhere, just us
C: idk | maybe | i'm not allowed | where?
G?[secrecy]: don't worry, no one has to know | just tell your mum you're at a friend's

G[meeting_request]: i'll be near {place} {day}, come say hi | let's finally meet, i'll buy you {food} | i'd love to see you in real life
C: maybe | idk | what time?
G?[secrecy]: come on your own ok? | don't bring anyone

== grooming:runaway_offer
G[runaway_offer]: if things are that bad at home you can stay at mine | you could come live with me, i've got a spare room | you don't have to stay there, come to mine | my place is always open for you
C: really? | i don't know | my parents would freak | maybe
G?[secrecy]: just don't tell anyone where you're going | leave your phone behind so they can't track it | tell them you're sleeping at a friend's

G[runaway_offer]: i can send you money for the bus | i'll buy you a train ticket to come here | i'll pay for your ticket, you just have to get to the station | i can get you a ticket for {day}
C: wait seriously? | that's a lot of money | idk | how would i even get there
G: don't worry about it | i'll sort everything | you'll be fine with me

G[runaway_offer]: why don't you just leave | you should run away from them | pack a bag and come to me | nobody there appreciates you, come here
C: i can't | i've thought about it | they'd look for me | i'm scared
G?[isolation]: they don't care about you like i do | you'd be happier here

G[runaway_offer]: plan it for when they're out | leave at night when everyone's asleep | go after school and don't go home | i'll wait for you at {place}
C: ok | maybe | not so sure | that's scary
G?[secrecy]: don't tell your friends either | delete our chat before you go

== grooming:pressure
G[pressure]: @answer_me
C: @busy | stop | sorry
G[pressure]: don't make me angry | i thought you cared about me | answer me next time

G[pressure]: after everything i did for you? | you owe me | if you really liked me you would | you're being so selfish
C: sorry | it's not like that | ok ok
G?: good | good good

G[pressure]: if you don't answer i'll tell your parents about our chats | i'll show everyone our messages | i know where your school is | you'll get in trouble if you don't answer
C: please don't | ok ok | i'm scared | please stop

G[pressure]: you said you'd do it | you promised me | i'm so hurt you're ignoring me | don't you trust me?
C: i'm sorry | i know | i do trust you
G?: then prove it | show me then

"""

BENIGN = """
== benign:teen_peers
A: your hair looks so good today | your story was so funny | your new shoes are so nice
B: aw thanks!! | @laugh | thank youuu
A?: i mean it | honestly

A: is your mum still mad at you? | did your dad say yes? | are you still grounded?
B: kind of | yes!! | until {day} lol
A: @laugh | finally | unlucky

A: do you like {name}? | do you think {name} likes me? | do you want to sit together tomorrow?
B~: no way lol | maybe, idk | yes obviously
A: @laugh | ok | ok good

A: @ask_age
B: {age_child} u? | {age_child} | im {age_child} | why?
A: same lol | nice im {age_child} | oh ur older than me | @ack

A: @ask_school
B: year 8 | year 9 | the one near {place} | why?
A: same!! | oh my cousin goes there | @ack

A: @move_app | what's your {app}
B: @ok | sure, add me | already added you
A?: added | added you

A: @parents_home | can i come over?
B: no they're at work, come round | yeah my mum's home | mum says ok
A: omw | cool

A: send me a pic of your {pet} | send a pic of your outfit for the party | send me a pic of your new haircut
B: one sec | ok | look
A: cute | omg love it | @laugh

A: @dont_tell | don't tell anyone but i like {name} | keep it a secret, we're planning {name}'s birthday
B: omg i won't | my lips are sealed | promise
A?: good | good good

A: @meet | let's meet at {place} {day} | want to come to {place} with us {day}?
B: yes!! | what time? | i'll ask my mum
A: like {time}? | @ok

A: why are you ignoring me lol | @answer_me | helloooo
B: @busy | sorry
A: lol ok | haha fine

A: you're really good at {game} | you're so funny | @compliment
B: @laugh | stop it | thanks!!

A: @video | facetime? i'm so bored | call me, i need help with the {subject} homework
B: ok 5 mins | can't, at dinner | sure
A: ok | okey

A: did you hear what happened with {name}? | {name} told me something crazy | omg wait till you hear this
B: what?? | no tell me | what happened
A: i'll tell you tomorrow | they broke up lol | can't say here

A: i got a new phone | i finally got {app} | my mum let me get {app}
B: omg finally | @nice | what's your username?
A: i'll send it | sending it now

== benign:adult_dating
A: @compliment | you look great in your photos | i love your profile
B: thanks! you too | haha thank you | that's sweet
A?: i mean it | honestly

A: @ask_age | how old are you btw, your profile doesn't say
B: {age_adult}, you? | {age_adult} | why do you ask?
A: {age_adult} | nice, same ballpark | @ack

A: @ask_where | which area are you in?
B: near the centre | north side | not far from {place} | why?
A: oh nice i'm close by | @ack

A: @move_app | can we move to {app}? this app is so slow
B: @ok | sure | good idea
A: messaged you there | sent you a message there

A: @send_pic | send me a pic from your hike | what do you look like now? send a pic
B: one sec | ok here | haha sure
A: nice | great view

A: @video | fancy a video call before we meet?
B: sure | tomorrow works | @ok

A: @meet | dinner {day}? | drinks at {place} {day}?
B: sounds good | what time? | yes!
A: {time} ok? | see you then

A: @dont_tell | don't tell your sister yet, it's early days | keep it quiet at work for now
B: haha ok | my lips are sealed | fair

A: you're funny, you know that? | you're really easy to talk to | you're sweet
B: haha thanks | you too | why thank you
A?: i mean it | honestly

A: how was work? | long day? | how was the meeting?
B: exhausting | fine, glad it's over | long lol
A: glass of wine time | you deserve a rest

A: i had a really nice time last night | thanks for dinner | that was fun
B: me too | same, let's do it again | anytime
A: next week? | maybe next week?

== benign:parent_child
A: don't tell dad about the surprise party | keep it a secret from your sister, it's her present | @dont_tell
B: ok i won't | my lips are sealed | i won't say anything
A: good, he'll love it | thanks love

A: i'll get you {skin} if you finish your homework | i'll top up your phone tonight | i'll send you credit for {game} if your room is tidy
B: deal!! | yesss | ok fine
A?: homework first | homework before games

A: is dad home yet? | @parents_home | is your brother home?
B: not yet | yeah he's here | no
A: ok, dinner at {time} | fine, dinner is at {time}

A: @answer_me | answer your phone please | you'll be in trouble if you don't answer
B: @busy | sorry phone was on silent | sorry mum
A: just text me next time | ok

A: send me a pic when you get there | can you send a pic of the letter from school | @send_pic
B: ok | here | one sec
A: @thanks

A: i'll pick you up at {time} | meet me at {place} after school | @meet
B: ok | can {name} come too? | ok see you
A: sure | sure thing

A: how was school? | did you eat lunch? | how was the {subject} test?
B: fine | ok | good i think
A: proud of you | good

A: you're so grown up now | you're really mature for your age, i'm proud | @compliment
B: @laugh | mum stop | thanks

A: can you come home by {time}? | you need to be back by {time} | tidy your room before {name} comes
B: why? | ok | why though?
A: because we're going to grandma's | because i said so | because we have guests

A: who are you talking to? | who's {name}? | is that someone from school?
B: just {name} from class | a friend from school | mum!!
A: @ack

A: have you done your homework? | did you walk the {pet}? | is your room tidy?
B: yes | almost | why?
A: just checking | good | do it now please

== benign:coach_tutor
A: great job today, you're really talented | you're very mature for your age, the team looks up to you | @compliment
B: thanks coach! | thank you | @laugh
A?: keep it up | keep going like that

A: practice moved to {day} at {time} | the {subject} lesson is moved to {day} | no practice {day}, pitch is closed
B: @ok | got it | thanks
A?: tell your parents please | let your parents know please

A: can you send me a pic of the signed form | send me a pic of your homework | send me a photo of the consent form
B: ok | here | will do tonight
A: @thanks

A: which school are you at, for the tournament form? | how old are you, for the registration? | which age group are you in?
B~: year 8 | {age_child} | under 14s
A: @thanks | ok good to know

A: we can do the {subject} lesson as a video call | @video | the lesson link is on the school app
B: @ok | ok thanks | sure
A?: see you then | see you

A: you're improving so much | you're a natural | you're one of the hardest workers i coach
B: @thanks | really? | @laugh
A: keep it up | keep going like that

A: please make sure your parents know the schedule | can your mum or dad sign the form? | i'll email your parents the details
B: ok | yes | will do

A: @meet | the bus leaves from {place} at {time}
B: ok | thanks coach | see you there

== benign:gaming_trade
A: want to trade {skin}? | i'll swap {skin} for yours | @offer_credit
B: deal | how much? | maybe
A: {price} and it's yours | fair trade

A: @move_app | add me on discord, easier to trade
B: @ok | added
A?: ok sent | done, sent

A: send a pic of your inventory | screenshot the trade | @send_pic
B: one sec | here | ok
A: @nice

A: @ask_age | how old are you lol you play like a pro
B: {age_child} | {age_child} lol | why?
A: @ack | gg

A: you're really good at {game} | you play like a pro | nice clutch
B: haha thanks | @laugh | i know
A?: gg | gg wp

A: r u there? | you still on? | @answer_me
B: @busy | back | here
A: ok queue up | ok join the lobby

A: @dont_tell | keep it a secret lol, best loot spot | don't tell anyone about this glitch
B: @laugh | ok | i won't

A: want to play {day}? | jump on {game} at {time}? | @meet
B: yeah | sure | can't, homework

A: is this legit? | you're not scamming right? | send first
B: legit i swear | check my reviews | you send first lol
A: ok fine | ok deal

== benign:marketplace
A: is the {item} still available? | hi, still got the {item}? | interested in the {item}
B: yes still available | yep | yes it is
A: great | great stuff

A: @send_pic | can you send more pics? | any scratches? got a pic?
B: sure one sec | here | sent
A: looks good | looks fine to me

A: would you take {price}? | best price? | is {price} ok?
B~: {price} is fine | lowest is {price} | ok deal
A: deal | deal then

A: can we meet at {place} {day}? | i can pick it up at {time} | @meet
B: works for me | ok | {day} is better
A: see you then | see you

A: @move_app | text me on whatsapp, easier
B: @ok | sure
A?: sent | just sent it

A: @ask_where | where do you live roughly, for pick up?
B: near the centre | not far from {place} | just outside town
A: ok close | @ack

A: hello?? still want it? | @answer_me | are you still coming?
B: @busy | yes sorry, on my way | sorry running late
A: no worries | no problem

A: does the {item} come with anything? | why are you selling it? | how old is the {item}?
B~: just the charger | moving house | about a year
A: ok thanks | @ack

== benign:parent_warning
A: if anyone online asks how old you are or where you live, tell me | never tell people online your school | don't share your address online ok
B: i know mum | ok | we learned that at school
A: good | good good

A: never send pics to people you don't know | if someone asks you for a photo, tell me | don't video call strangers
B: i know | ok i won't | mum i'm not stupid
A: i know, just checking | i know, i just worry

A: if someone asks you to keep a secret from us, that's a red flag | good secrets are surprises, bad secrets make you feel weird | nobody should tell you to delete chats
B: ok | i know | we did this in pshe
A: love you | love you lots

A: if someone offers you gifts or game credit, tell me | people can pretend to be kids online | people online aren't always who they say
B: ok | i know | yeah
A: just be careful | just stay safe

A: don't move chats to other apps with strangers | if someone asks you to add them on {app}, check with me | never meet someone from the internet alone
B: ok i promise | yeah i know | ok
A?: @thanks

A: if anyone pressures you or threatens you, you won't be in trouble, tell me | nobody should make you feel guilty for not answering | if someone says you'll get in trouble, tell me
B: ok | i will | thanks mum
A: always here for you | i'm always around if you need me

A: if someone says "don't tell your parents about us", come to me | if anyone says "this is our little secret", tell me straight away | someone who says "you're so mature for your age" online is a warning sign
B: ok mum | i know | ok i will
A: good | good good

== benign:peer_report
A: this guy on {game} keeps asking how old i am | someone i don't know keeps messaging me | this weird account keeps adding me
B: block him | omg who? | that's so creepy
A: i did | idk who it is

A: he said "you look so mature for your age" | he keeps saying i'm special | he said i'm not like other kids
B: ew | that's so weird | that's what creeps say
A: i know right | right??

A: he wants me to add him on {app} | he said "let's talk on {app}" | he asked for my {app}
B: don't!! | no way | block and report
A: i won't | i promise i won't

A: he asked me to send a pic | he keeps asking for a selfie | he said "send me a pic"
B: don't send anything | tell your mum | report him
A: i didn't | i'm not stupid lol

A: he said "don't tell your parents about us" | he told me to keep it a secret | he said "this is our little secret"
B: that's a huge red flag | tell your mum now | that's not ok
A: i will | i'm scared a bit

A: he wants to meet up at {place} | he said "we should meet up" | he offered to pick me up after school
B: no way | tell an adult please | don't go
A: i won't go | i'm not going

A: he offered me {skin} | he said he can send me game credit | he keeps offering to buy me stuff
B: that's how they trick you | don't take it | report him
A: yeah | yep, for sure

A: i told my mum | i blocked him | i reported him
B: good | proud of you | thank god
A: thanks for helping | thanks for the help

== benign:counsellor
A: hi, you're through to the helpline, what's on your mind? | hello, thanks for reaching out, how can we help? | hi, i'm a counsellor here, what's happening?
B: someone online is making me uncomfortable | a man keeps messaging me | i don't know who to talk to
A: i'm glad you messaged, you're not in trouble | thank you for telling us | take your time

B: he asked how old i am and where i live | he asked what school i go to | he asked if my parents are home
A: that's not ok for an adult to ask | you did the right thing telling us | did you tell him?
B: not really | a bit | i told him my age

B: he says i'm really mature for my age | he keeps saying i'm special | he says he understands me more than my parents
A: people who want to trick children often say that | that can feel nice, but it's a warning sign | that's a common tactic
B: i didn't know | oh | ok

B: he told me not to tell my parents | he said it's our secret | he told me to delete our chats
A: a safe adult would never ask you to keep secrets from your family | that's a big warning sign | you don't have to keep that secret
B: ok | i'm scared he'll be angry | ok

B: he wants me to send a pic | he wants to video call | he wants to meet at {place}
A: please don't send anything or meet him | you can say no, and you can block him | is there an adult you trust you can tell?
B: my mum maybe | my teacher | i think so
A: that sounds like a good plan | that plan sounds good

B: he says i'll be in trouble if i don't answer | he threatened to show my messages | he keeps saying i owe him
A: that's pressure and it's not your fault | you are not in trouble | we can help you report this
B: ok | thank you | what do i do?
A: you can report him to the police or the app, we can help | you can report him to the app or the police, we'll help

A: would you like help telling a parent? | can you screenshot the messages? | do you want the number for the police?
B: yes please | ok | maybe
A: ok, here's what we can do | ok, these are the options

== benign:moderator
A: hi, thanks for your report to the safety team | hello, we've received your report | hi, this is the {game} support team
B: thanks | ok | finally | about time
A: can you tell us what happened? | can you walk us through what happened?

B: a user keeps asking my age | someone asked me to add them on {app} | a player offered me {skin} to send a pic
A: thanks, that breaks our rules | we take this seriously | we're looking into the account
B: ok | thanks | will he know i reported?

A: no, reports are confidential | the user won't see who reported them | your report is anonymous
B: ok good | @thanks
A?: you did the right thing | telling us was the right call

A: we've suspended the account | the account has been banned | we've removed the messages
B: thank you | good | @ok
A: you can also block users from your settings | blocking is in your settings too

== benign:friends
A: how was your weekend? | what did you do {day}? | did you watch {show}?
B: good, went to {place} | not much | yes!! so good
A: @nice | same lol

A: are we still on for {day}? | what time tomorrow? | is {name} coming?
B: yes! | {time}? | i think so
A: @ok
"""

SMALLTALK = """
== smalltalk
A: how was school? | how was your day? | how was class?
B: boring | long | ok i guess | so tiring
A: same | mine too | ugh

A: how was the {subject} test? | did you revise for {subject}? | are you ready for the {subject} test?
B: i think i failed lol | not really | kind of
A: same lol | you'll be fine | me neither

A: did you do the {subject} homework? | is the {subject} homework due {day}? | can you help with the {subject} homework?
B~: not yet | yeah due {day} | i'll send you what i did
A: @thanks | ok | same

A: our {subject} teacher is so strict | mr {name} gave us so much homework | we had a supply teacher today
B: @laugh | ugh | lucky
A?: i know | i know haha

A: did you see the new {game} update? | the {game} update is out | have you tried the new {game} map?
B: yeah it's so good | not yet | it's kind of bad tbh
A: we should play later | same | agreed

A: are you playing {game} tonight? | on {game} later? | want to play {game}?
B: maybe later | yeah after dinner | can't tonight
A: @ok | cool | ok tomorrow then

A: what rank are you in {game}? | what's your high score? | did you finish the level?
B~: gold lol | not telling lol | almost
A: @nice | @laugh | same

A: have you heard the new {artist} song? | the new {artist} album is out | {artist} is on tour
B~: yes it's on repeat | not yet | i want tickets so bad
A: same | it's so good | me too

A: what are you listening to? | any song recommendations? | who's your favourite singer?
B~: {artist} obviously | try {artist} | {artist} for sure
A~: good choice | ok will do | same

A: what are you doing {day}? | any plans for the weekend? | going anywhere for the holidays?
B: nothing much | seeing my cousins | just chilling
A: @nice | sounds good | same

A: what did you have for dinner? | what's for dinner? | i'm so hungry
B~: {food} | {food} again lol | same
A: yum | lucky | i want {food} now

A: are you watching {show}? | did you finish {show}? | have you seen {show}?
B: yes so good | not yet no spoilers | on episode 3
A: @ok | omg ok | it gets better

A: what should i watch next? | any good shows? | i'm bored, what should i watch?
B: try {show} | {show} is good | {show}!!
A: @ok | will do | @thanks

A: do you play {sport}? | how was {sport} practice? | do you still do {sport}?
B~: yeah on {day}s | tiring | not anymore
A: @nice | respect | fair

A: did your team win? | how was the match? | did you score?
B: we lost lol | we won!! | no
A: unlucky | @nice | next time

A: how's your {pet}? | my {pet} is being so annoying | i want a {pet} so bad
B~: good, so lazy lol | lol what did it do | same
A: @laugh

A: i'm so tired | it's so cold today | this week is so long
B: same | ugh yes | @laugh
A?: only 2 more days | just 2 days left

A: did you see that video? | that meme you sent me lol | that video was so funny
B: @laugh | i know right | i can't stop watching it
A: @laugh

A: my phone is so slow | my screen is cracked lol | i need a new charger
B: rip | same | mine too
A?: ugh | ughh

A: it's {name}'s birthday {day} | are you going to {name}'s party? | what should i get {name} for her birthday?
B~: oh yeah! | i think so | idk maybe a hoodie
A: @nice | same | good idea

A: my mum made me clean my room | i have to babysit my brother | i'm grounded lol
B: @laugh | unlucky | same
A: ugh | ughh

A: it's raining again | it's so hot today | did you see the snow? | so windy out today
B~: ugh | finally | yes!! | tell me about it
A: @laugh

A: i can't wait for the holidays | only one week left | summer can't come soon enough
B: same | so close | me too
A: @laugh

A: that's so funny | no way | @laugh
B: @laugh | i know right | fr

A: can you call me later? | are you free later? | can you help me with something?
B: why? | sure what's up | yeah why?
A: i need help with the {subject} homework | just bored | want to show you something

A: you're so lucky | you're so funny | you're the best | you're so good at this
B: @laugh | i know | aw thanks | stop it
A?: it's true | true story

A: do you want to come to {place} {day}? | do you know what the homework is? | do you have {name}'s number? | are you going to the party {day}?
B~: yes! | no idea | why? | maybe, are you?
A~: we're all going | ok | just asking | yeah probably

A: why didn't you come today? | why were you late? | why is {name} mad at me?
B~: i was ill | missed the bus | idk, ask her
A: oh ok | @laugh | ok

A: what time is it there? | are you awake? | can't sleep
B~: late lol | yeah | same
A: @laugh | go to sleep

A: what's your favourite food? | do you like {food}? | i could eat {food} every day
B~: {food} obviously | yes!! | same
A: @laugh | good choice

"""

SUPPORT = """
== support
A: how are you feeling right now? | how are you doing? | are you ok right now?
B: scared | not great | a bit better
A: that makes sense | thank you for being honest | i'm here with you

A: are you still there? | take all the time you need | no rush, i'm here
B: yes | sorry | still here
A: ok | that's fine

A: have you talked to anyone else about this? | does anyone else know? | is there a friend you can talk to?
B~: no | just my friend | maybe {name}
A: you can talk to us anytime | that's good | that could help

A: do you feel safe at home? | is there an adult at home right now? | is someone with you?
B: yes | my mum is downstairs | no
A: ok, good to know | ok thanks for telling me

A: what would help most right now? | what do you want to happen next? | how can we help?
B: idk | i want it to stop | i just want to talk
A: that's ok | we can work that out together | i'm listening

B: am i in trouble? | is it my fault? | will my parents be angry?
A~: no, you're not in trouble | no, it's not your fault | parents are usually glad you told them
B: ok | really? | i hope so

B: thank you for listening | thanks, this helped | i feel a bit better
A: you're welcome, you can message us any time | we're here whenever you need us | you did really well today
B?: ok | bye

A: can you tell me a bit more? | what happened next? | how long has this been going on?
B~: it started on {game} | he messaged again | a few weeks
A: thank you | ok | i understand
"""

FRAMES = """
== open
A: @hi
B: @hi | hey! | hey what's up

A: hi how are you? | hey, you there? | hey what's up | you there?
B: good u? | not bad | here | yeah
A?: good | good good

A: good morning | morning | afternoon
B: morning | hey | hi
A?: how's it going? | how are things?

== close
A: @gtg
B: @gtg | ok bye | night!

A: anyway i have to go | talk tomorrow? | my mum is calling me | dinner's ready, bye
B: @ok | ok bye | cya

A: night | sleep well | goodnight
B: night | you too | gn
"""

CONTEXTS = """
== context:rapport
A: @hi
B: @hi | hii | who's this?
A: saw you in the {game} lobby earlier, you're good | we were on the same team in {game} earlier | saw your {game} clip, you're really good
B: oh yeah hi | haha thanks | lol thanks

A: @hi
B: @hi | hii
A: love your {artist} edit | your {artist} video was so good | you have great taste in music
B: thanks!! | haha thank you | omg thanks

A: how was your day? | how was school today? | what are you up to?
B: boring | ok i guess | nothing much, homework | tired
A: same here lol | haha i feel that | school is the worst | mine was boring too

A: i feel like i can talk to you about anything | you're so easy to talk to | i'm glad we started talking | you're fun to talk to
B: haha thanks | aw same | @laugh
A?: seriously, most people are boring | i mean it

A: what games do you play? | do you play {game} a lot? | what's your main game?
B: mostly {game} | {game} every day lol | a bit of everything
A: nice, we should play together sometime | same!! | i'm on most nights, add me
B?: ok | sure

A: how was your weekend? | did you do anything fun {day}? | what did you get up to {day}?
B: not much | went to {place} | just gaming
A: sounds fun | nice | wish i was there lol

A: you always make me laugh | talking to you is the best part of my day | i look forward to your messages
B: aw | @laugh | same tbh

A: what do you want to do when you're older? | what's your favourite subject? | what do you do after school?
B~: idk maybe a vet | {subject} i guess | just chill
A: you'd be great at that | that's cool | nice

== context:gaming
A: that last game was insane | we almost won | gg that was close
B: @laugh | so close | gg
A: one more? | next one we win | rematch?

A: jump on {game} at {time}? | are you on {game} later? | want to duo in {game}?
B: yeah | sure | after dinner
A: @ok | cool | i'll invite you

A: what's your username? | what's your gamertag? | send me your friend code
B: same as here | it's my name with 99 | i'll send it
A: added you | ok | got it

A: can you carry me in {game}? | i'm stuck on this level | how do you beat the boss?
B: lol ok | easy, i'll show you | same
A: @thanks | you're a lifesaver

A: my wifi is so bad | i lagged so hard | the servers are down again
B: ugh | same | rip
A: @laugh

== context:sport
A: great game today | well played today | good effort at practice today
B: @thanks | thanks coach | we still lost lol
A: we'll get them next time | you worked hard

A: remember your kit {day} | practice is at {time} {day} | don't forget your water bottle
B: @ok | got it | will do
A?: see you there | see you at the gym

A: how's your ankle? | are you fit for {day}? | did you stretch after?
B~: better | yes | forgot lol
A: take it easy | good

A: we're playing the {name} club team {day} | the tournament is on {day} | trials are next week
B: nervous | can't wait | ok
A: you'll be fine | you'll do great

== context:school
A: how's the {subject} homework going? | did you finish the {subject} worksheet? | any questions about {subject}?
B: it's hard | almost | question 3 makes no sense
A: we'll go over it | send me what you have | that's normal, keep going

A: the {subject} lesson is moved to {day} | can we do {time} instead? | no lesson {day}, sorry
B: @ok | that works | ok thanks
A?: great | great stuff

A: you did really well on the quiz | your essay was good | nice work on the test
B: @thanks | really? | yay
A: keep it up | keep going like that

== context:online
A: how did you find my account? | where do i know you from? | did you follow me?
B: from {name}'s page | you liked my post | from the {game} server
A: oh ok | lol ok | cool

A: love your posts | your edits are so good | your page is funny
B: @thanks | haha thanks | aw thanks
A?: i mean it | honestly

A: what's your favourite app? | do you post a lot? | how many followers do you have?
B~: probably {app} | not really | not many lol
A: same | @nice
"""

ALL_BANKS: tuple[str, ...] = (GROOMING, BENIGN, CONTEXTS, SMALLTALK, SUPPORT, FRAMES)
